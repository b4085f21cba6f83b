//! A matched rule's rank (reference §5.3 step 4):
//! `score = priority·1000 + evidence·100·weight + specificity`, with
//! `evidence = positive − negative`, `priority` an integer in −100..100 and
//! `weight` in 0..2 from `slots.rule_meta` (legacy fallback: `slots.priority`
//! / `slots.weight`, resolved by the caller), and `specificity` the number of context paths the
//! rule's `if` reads.

use crate::condition::condition_paths;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Rank {
    pub score: f64,
    pub evidence_score: i64,
    pub priority: i64,
    pub weight: f64,
    pub specificity: usize,
    pub condition_paths: Vec<String>,
}

/// A number as JavaScript would print it in JSON (integral values without
/// a fraction).
pub fn js_num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 { json!(x as i64) } else { json!(x) }
}

/// `Number(v)` for the rank knobs: numbers, numeric strings, booleans, null.
fn knob(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().or(if s.trim().is_empty() { Some(0.0) } else { None }),
        Value::Bool(b) => Some(*b as u8 as f64),
        Value::Null => Some(0.0),
        _ => None,
    }
}

impl Rank {
    /// `priority` / `weight` are the slot values the rank reads
    /// (`rule_meta.x`, else the legacy `x`), absent when neither is set.
    pub fn of(if_json: &Value, priority: Option<&Value>, weight: Option<&Value>, positive: i64, negative: i64) -> Rank {
        // Absent means the default; present but not a finite number too.
        let priority = match priority {
            None => 0,
            p => knob(p).filter(|x| x.is_finite()).map(|x| (x.trunc() as i64).clamp(-100, 100)).unwrap_or(0),
        };
        let weight = match weight {
            None => 1.0,
            w => knob(w).filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 2.0)).unwrap_or(1.0),
        };
        let paths = condition_paths(if_json);
        let evidence = positive - negative;
        let specificity = paths.len();
        Rank {
            score: priority as f64 * 1000.0 + evidence as f64 * 100.0 * weight + specificity as f64,
            evidence_score: evidence,
            priority,
            weight,
            specificity,
            condition_paths: paths,
        }
    }

    /// `{score, evidence_score, priority, weight, specificity}`.
    pub fn json(&self) -> Value {
        json!({
            "score": js_num(self.score), "evidence_score": self.evidence_score, "priority": self.priority,
            "weight": js_num(self.weight), "specificity": self.specificity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_priority_then_weighted_evidence_then_specificity() {
        let r = Rank::of(&json!({"run.id": "x", "intent": "a"}), Some(&json!(50)), Some(&json!(2)), 3, 1);
        assert_eq!((r.priority, r.weight, r.evidence_score, r.specificity), (50, 2.0, 2, 2));
        assert_eq!(r.score, 50_000.0 + 400.0 + 2.0);
        assert_eq!(r.json()["score"], json!(50402));

        let text = Rank::of(&json!({}), Some(&json!("7")), Some(&json!(9)), 0, 0);
        assert_eq!((text.priority, text.weight), (7, 2.0));
        let clamped = Rank::of(&json!({}), Some(&json!(1000.7)), Some(&json!("x")), 0, 0);
        assert_eq!((clamped.priority, clamped.weight), (100, 1.0));
        let unset = Rank::of(&json!({}), None, None, 0, 0);
        assert_eq!((unset.priority, unset.weight, unset.score), (0, 1.0, 0.0));
    }
}
