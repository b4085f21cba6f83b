//! Small statistics over telemetry rows, shared by the diagnostics, the
//! timeseries and the SLO views.

/// The `p`-th percentile of ascending `sorted` (nearest rank; 0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `n / total`, 0 when nothing was counted.
pub fn rate(n: i64, total: i64) -> f64 {
    if total == 0 { 0.0 } else { n as f64 / total as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 95.0), percentile(&v, 99.0)), (51.0, 95.0, 99.0));
        assert_eq!(percentile(&[], 95.0), 0.0);
        assert_eq!((rate(1, 4), rate(0, 0)), (0.25, 0.0));
    }
}
