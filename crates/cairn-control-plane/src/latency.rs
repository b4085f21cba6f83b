//! Small statistics over request telemetry rows, shared by the
//! diagnostics, the timeseries, key usage and the SLO views.

use cairn_core::request_reader::Reader;
use cairn_spin::sql::SqlValue;

/// The endpoint classes telemetry records.
pub const ENDPOINTS: [&str; 3] = ["write", "recall", "recall_text"];

/// Reports an `endpoint` that is not one of [`ENDPOINTS`].
pub fn check_endpoint(r: &mut Reader, endpoint: Option<&str>) {
    if endpoint.is_some_and(|e| !ENDPOINTS.contains(&e)) {
        r.issue("endpoint", format!("endpoint must be one of {}", ENDPOINTS.join(", ")));
    }
}

/// ` AND endpoint = ?` (its value pushed onto `params`) when filtered, else "".
pub fn endpoint_filter(endpoint: Option<&str>, params: &mut Vec<SqlValue>) -> &'static str {
    match endpoint {
        Some(e) => {
            params.push(e.into());
            " AND endpoint = ?"
        }
        None => "",
    }
}

/// Requests counted by outcome, with their latencies.
#[derive(Debug, Default)]
pub struct Tally {
    pub latencies: Vec<f64>,
    /// 5xx.
    pub server_errors: i64,
    /// 429.
    pub throttled: i64,
    /// Other 4xx.
    pub client_errors: i64,
}

impl Tally {
    pub fn add(&mut self, status: i64, latency_ms: f64) {
        self.latencies.push(latency_ms);
        match status {
            429 => self.throttled += 1,
            s if s >= 500 => self.server_errors += 1,
            s if s >= 400 => self.client_errors += 1,
            _ => {}
        }
    }
    pub fn total(&self) -> i64 {
        self.latencies.len() as i64
    }
    /// 5xx + 429: what the server failed or refused (the reference's
    /// `error_budget_consumed`).
    pub fn budget_consumed(&self) -> i64 {
        self.server_errors + self.throttled
    }
    pub fn error_rate(&self) -> f64 {
        rate(self.budget_consumed(), self.total())
    }
    pub fn mean(&self) -> f64 {
        if self.latencies.is_empty() { 0.0 } else { self.latencies.iter().sum::<f64>() / self.latencies.len() as f64 }
    }
    /// Sample standard deviation (0 under two requests).
    pub fn stddev(&self) -> f64 {
        let n = self.latencies.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.latencies.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }
}

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

    #[test]
    fn a_tally_classes_outcomes() {
        let mut t = Tally::default();
        for (status, ms) in [(200, 10.0), (500, 20.0), (429, 30.0), (404, 40.0)] {
            t.add(status, ms);
        }
        assert_eq!((t.total(), t.server_errors, t.throttled, t.client_errors), (4, 1, 1, 1));
        assert_eq!((t.budget_consumed(), t.error_rate(), t.mean()), (2, 0.5, 25.0));
        assert!((t.stddev() - 12.909_944).abs() < 1e-5);
    }
}
