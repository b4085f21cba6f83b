//! Deterministic spherical k-means (cosine): k-means++ seeding from a fixed
//! seed, then Lloyd iterations with unit-normalized centroids. The same
//! points and seed always give the same centroids.

use crate::{SplitMix64, dot, unit};

/// Trains `k` unit centroids on unit `points` (at most `iterations` rounds;
/// stops early when no assignment changes). Returns fewer than `k`
/// centroids when there are fewer distinct points.
pub fn train(points: &[Vec<f32>], k: usize, iterations: usize, seed: u64) -> Vec<Vec<f32>> {
    if points.is_empty() || k == 0 {
        return Vec::new();
    }
    let dims = points[0].len();
    let mut rng = SplitMix64(seed);
    // k-means++: each next seed drawn with probability ∝ the square of its
    // distance (1 − cosine) to the nearest chosen seed.
    let mut centroids: Vec<Vec<f32>> = vec![points[rng.below(points.len())].clone()];
    let mut dist: Vec<f32> = points.iter().map(|p| (1.0 - dot(p, &centroids[0])).max(0.0)).collect();
    while centroids.len() < k {
        let total: f64 = dist.iter().map(|d| (*d as f64) * (*d as f64)).sum();
        if total <= 1e-12 {
            break;
        }
        let mut target = rng.next_f64() * total;
        let mut pick = points.len() - 1;
        for (i, d) in dist.iter().enumerate() {
            target -= (*d as f64) * (*d as f64);
            if target <= 0.0 {
                pick = i;
                break;
            }
        }
        let c = points[pick].clone();
        for (d, p) in dist.iter_mut().zip(points) {
            *d = d.min((1.0 - dot(p, &c)).max(0.0));
        }
        centroids.push(c);
    }
    let mut assign: Vec<usize> = vec![usize::MAX; points.len()];
    for _ in 0..iterations {
        let mut changed = false;
        for (a, p) in assign.iter_mut().zip(points) {
            let best = nearest(&centroids, p);
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![vec![0f64; dims]; centroids.len()];
        let mut counts = vec![0usize; centroids.len()];
        for (a, p) in assign.iter().zip(points) {
            counts[*a] += 1;
            for (s, x) in sums[*a].iter_mut().zip(p) {
                *s += *x as f64;
            }
        }
        for (i, c) in centroids.iter_mut().enumerate() {
            if counts[i] == 0 {
                continue; // an empty cluster keeps its centroid
            }
            let mean: Vec<f32> = sums[i].iter().map(|s| (*s / counts[i] as f64) as f32).collect();
            if let Some(u) = unit(&mean) {
                *c = u;
            }
        }
    }
    centroids
}

/// Index of the centroid most similar to `v` (ties: the lower index).
pub fn nearest(centroids: &[Vec<f32>], v: &[f32]) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let s = dot(v, c);
        if s > best.1 {
            best = (i, s);
        }
    }
    best.0
}

/// The `n` centroids most similar to `v`, best first.
pub fn nearest_n(centroids: &[Vec<f32>], v: &[f32], n: usize) -> Vec<usize> {
    let mut scored: Vec<(usize, f32)> = centroids.iter().enumerate().map(|(i, c)| (i, dot(v, c))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(n).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_well_separated_clusters_deterministically() {
        let mut r = SplitMix64(3);
        let centers: Vec<Vec<f32>> =
            (0..4).map(|_| unit(&(0..16).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap()).collect();
        let points: Vec<Vec<f32>> = (0..400)
            .map(|i| {
                let c = &centers[i % 4];
                unit(&c.iter().map(|x| x + (r.next_f64() as f32 - 0.5) * 0.05).collect::<Vec<_>>()).unwrap()
            })
            .collect();
        let a = train(&points, 4, 10, 42);
        assert_eq!(a, train(&points, 4, 10, 42));
        // Every true center has a trained centroid right next to it.
        for c in &centers {
            assert!(a.iter().any(|t| dot(t, c) > 0.99));
        }
        assert_eq!(nearest_n(&a, &a[2], 1), vec![2]);
    }
}
