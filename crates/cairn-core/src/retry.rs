//! Exponential backoff, the one formula every retrying queue here uses
//! (the derivation outbox, the evidence publish queue; reference §7.7).

/// The wait after the `attempts`-th failed attempt:
/// `min(max_ms, base_ms · 2^(attempts−1))` milliseconds (the exponent is
/// held to 0..=40, so it neither underflows nor overflows).
pub fn backoff_ms(attempts: i64, base_ms: i64, max_ms: i64) -> i64 {
    let exp = (attempts - 1).clamp(0, 40) as u32;
    base_ms.saturating_mul(1i64 << exp).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let waits: Vec<i64> = (1..=7).map(|a| backoff_ms(a, 30_000, 900_000)).collect();
        assert_eq!(waits, [30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000]);
        assert_eq!(backoff_ms(60, 30_000, 900_000), 900_000);
        assert_eq!(backoff_ms(3, 0, 900_000), 0);
        assert_eq!(backoff_ms(0, 10, 50), 10);
    }
}
