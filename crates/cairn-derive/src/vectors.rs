//! Vector arithmetic the worker needs: the stored blob form, unit
//! normalization, cosine similarity, and topic centroids kept as exact
//! fixed-point sums (integer addition is order-independent, so a rebuild
//! that adds the same members in another order gets the same centroid).

/// Fixed-point scale for centroid sums (unit vectors' components are in
/// [-1, 1]; an i64 sum of 2^24-scaled values cannot overflow in practice).
const SCALE: f64 = (1u64 << 24) as f64;

/// Decodes little-endian f32 bytes.
pub use cairn_memory::recall::seeds::f32s as from_blob;

pub use cairn_spin::sql::f32_blob as to_blob;

pub use cairn_vector::unit;

/// Cosine similarity of two unit vectors (their dot product; see
/// [`cairn_vector::dot`]: deterministic, SIMD-friendly).
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    cairn_vector::dot(a, b) as f64
}

/// A centroid's exact sum of member unit vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedSum(pub Vec<i64>);

impl FixedSum {
    pub fn zeros(dims: usize) -> FixedSum {
        FixedSum(vec![0; dims])
    }

    pub fn from_blob(b: &[u8]) -> FixedSum {
        FixedSum(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    pub fn to_blob(&self) -> Vec<u8> {
        self.0.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Adds a unit vector (same dimension).
    pub fn add(&mut self, unit: &[f32]) {
        for (s, x) in self.0.iter_mut().zip(unit) {
            *s += (*x as f64 * SCALE).round() as i64;
        }
    }

    /// The centroid's direction as a unit vector.
    pub fn direction(&self) -> Option<Vec<f32>> {
        let v: Vec<f32> = self.0.iter().map(|s| (*s as f64 / SCALE) as f32).collect();
        unit(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_unit() {
        let v = vec![3.0f32, 4.0];
        assert_eq!(from_blob(&to_blob(&v)), v);
        let u = unit(&v).unwrap();
        assert!((dot(&u, &u) - 1.0).abs() < 1e-6);
        assert_eq!(unit(&[0.0, 0.0]), None);
        assert_eq!(unit(&[f32::NAN, 1.0]), None);
    }

    #[test]
    fn centroid_sum_is_order_independent() {
        let a = unit(&[0.1, 0.7, -0.2]).unwrap();
        let b = unit(&[0.3, -0.1, 0.9]).unwrap();
        let c = unit(&[-0.5, 0.2, 0.2]).unwrap();
        let mut s1 = FixedSum::zeros(3);
        for v in [&a, &b, &c] {
            s1.add(v);
        }
        let mut s2 = FixedSum::zeros(3);
        for v in [&c, &a, &b] {
            s2.add(v);
        }
        assert_eq!(s1, s2);
        assert_eq!(FixedSum::from_blob(&s1.to_blob()), s1);
        let d = s1.direction().unwrap();
        assert!(dot(&d, &a) > 0.0 && (dot(&d, &d) - 1.0).abs() < 1e-6);
    }
}
