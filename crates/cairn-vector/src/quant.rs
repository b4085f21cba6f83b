//! int8 quantization of (unit) vectors: `code[i] = round(x[i] / max|x| · 127)`
//! with the scale `max|x| / 127` kept as an f32, so `x ≈ scale · code`.
//! A 384-dimension vector takes 388 bytes instead of 1536; the dot product
//! of an f32 query with a code is `scale · Σ q[i]·code[i]`, accurate to
//! about 1% — good enough to pick candidates that are then re-ranked exactly.

/// A quantized vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub scale: f32,
    pub code: Vec<i8>,
}

pub fn quantize(v: &[f32]) -> Code {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return Code { scale: 0.0, code: vec![0; v.len()] };
    }
    let inv = 127.0 / max;
    Code { scale: max / 127.0, code: v.iter().map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8).collect() }
}

/// `decode(a) · decode(b)` with integer arithmetic (i8 × i8 summed in
/// i32: exact, and several times faster than converting to f32 — the
/// probe's inner loop). 384 dims × 127² stays far below `i32::MAX`.
pub fn dot_codes(a_scale: f32, a: &[i8], b_scale: f32, b: &[i8]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] as i32 * y[k] as i32;
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += *x as i32 * *y as i32;
    }
    a_scale * b_scale * sum as f32
}

/// `q · decode(code)` for an f32 query.
pub fn dot_code(q: &[f32], scale: f32, code: &[i8]) -> f32 {
    let n = q.len().min(code.len());
    let (q, code) = (&q[..n], &code[..n]);
    let mut acc = [0f32; 8];
    let (cq, cc) = (q.chunks_exact(8), code.chunks_exact(8));
    let (rq, rc) = (cq.remainder(), cc.remainder());
    for (x, c) in cq.zip(cc) {
        for k in 0..8 {
            acc[k] += x[k] * c[k] as f32;
        }
    }
    let mut tail = 0f32;
    for (x, c) in rq.iter().zip(rc) {
        tail += x * *c as f32;
    }
    scale * ((acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_dot_is_close_to_exact() {
        let mut r = crate::SplitMix64(1);
        for _ in 0..50 {
            let a = crate::unit(&(0..384).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap();
            let b = crate::unit(&(0..384).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap();
            let c = quantize(&b);
            assert!((dot_code(&a, c.scale, &c.code) - crate::dot(&a, &b)).abs() < 0.02);
        }
        assert_eq!(quantize(&[0.0, 0.0]).scale, 0.0);
    }

    #[test]
    fn integer_dot_matches_the_decoded_dot() {
        let mut r = crate::SplitMix64(2);
        for _ in 0..50 {
            let a = quantize(&crate::unit(&(0..384).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap());
            let b = quantize(&crate::unit(&(0..387).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap());
            let decoded: f64 = a
                .code
                .iter()
                .zip(&b.code)
                .map(|(x, y)| (a.scale * *x as f32) as f64 * (b.scale * *y as f32) as f64)
                .sum();
            assert!((dot_codes(a.scale, &a.code, b.scale, &b.code) as f64 - decoded).abs() < 1e-4);
        }
    }
}
