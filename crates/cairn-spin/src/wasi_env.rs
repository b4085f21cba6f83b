//! The clock and randomness every component adapter needs (WASI's, through
//! `std` and `getrandom`).

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Fills `buf` with random bytes.
pub fn random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the host provides random bytes");
}

/// A random (version 4) UUID.
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    random(&mut b);
    cairn_core::stable_id::uuid_v4(b)
}
