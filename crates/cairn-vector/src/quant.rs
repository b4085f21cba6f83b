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
}
