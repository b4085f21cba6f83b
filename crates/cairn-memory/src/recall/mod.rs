//! Recall's pure parts (reference §6), ahead of the recall route itself:
//!
//! - [`knobs`]: profile and strategy resolution, the explicit-knob rule and
//!   the knob limits (§6.1, §1.2.2);
//! - [`activation`]: spreading activation and node scoring (§6.2 step 4).

pub mod activation;
pub mod knobs;
