//! The built-in embedder: deterministic, lexical feature hashing.
//!
//! A text becomes a bag of features — lowercased word unigrams (weight 1),
//! word bigrams (0.5) and character trigrams of each word with boundary
//! marks (`^ab`, `abc`, `bc$`; 0.25) — each hashed (FNV-1a 64, fixed, so
//! vectors never change between builds or machines) to one dimension and a
//! sign; counts are damped (`1 + ln tf`) and the vector is L2-normalized.
//!
//! What it captures: shared words, local word order (bigrams), spelling
//! variants and morphology (trigrams: "deploy" ~ "deployed"). What it does
//! not: synonyms, paraphrase, meaning, other languages' equivalents. It is
//! not `all-minilm-l6-v2` — it is a stand-in so derivation, the vector
//! index and every test run offline and reproducibly. For semantic recall
//! point `cairn --embedder openai --embedder-url ...` at a real model.

use std::collections::HashMap;

/// The label derived vectors carry when this embedder made them.
pub const LOCAL_MODEL_NAME: &str = "local:lexical-hash-v1";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Feature kinds are salted so "ab" the word and "ab" the trigram differ.
const SALT_WORD: u8 = 1;
const SALT_BIGRAM: u8 = 2;
const SALT_TRIGRAM: u8 = 3;

/// The embedding of `text` in `dims` dimensions (all zeros for a text with
/// no word characters).
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims];
    if dims == 0 {
        return v;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    // feature hash -> (weight, count)
    let mut feats: HashMap<u64, (f32, u32)> = HashMap::with_capacity(words.len() * 8);
    let mut add = |h: u64, w: f32| {
        let e = feats.entry(h).or_insert((w, 0));
        e.1 += 1;
    };
    let mut prev: Option<u64> = None;
    for w in &words {
        let wh = fnv(fnv(FNV_OFFSET, &[SALT_WORD]), w.as_bytes());
        add(wh, 1.0);
        if let Some(p) = prev {
            add(fnv(fnv(fnv(FNV_OFFSET, &[SALT_BIGRAM]), &p.to_le_bytes()), &wh.to_le_bytes()), 0.5);
        }
        prev = Some(wh);
        // Character trigrams over "^word$" (on chars, not bytes).
        let chars: Vec<char> = std::iter::once('^').chain(w.chars()).chain(std::iter::once('$')).collect();
        for t in chars.windows(3) {
            let mut buf = [0u8; 12];
            let mut n = 0;
            for c in t {
                n += c.encode_utf8(&mut buf[n..]).len();
            }
            add(fnv(fnv(FNV_OFFSET, &[SALT_TRIGRAM]), &buf[..n]), 0.25);
        }
    }
    for (h, (w, tf)) in feats {
        let idx = (h % dims as u64) as usize;
        let sign = if (h >> 63) & 1 == 1 { -1.0 } else { 1.0 };
        v[idx] += sign * w * (1.0 + (tf as f32).ln());
    }
    let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x = (*x as f64 / norm) as f32;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn deterministic_unit_vectors_of_the_requested_size() {
        for dims in [16, 384, 1536] {
            let a = embed("Alice deployed v2 to production", dims);
            assert_eq!(a.len(), dims);
            assert_eq!(a, embed("Alice deployed v2 to production", dims));
            assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        }
        assert!(embed("", 384).iter().all(|x| *x == 0.0));
        assert!(embed("  ,;! ", 384).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn golden_components_do_not_drift() {
        // A change here changes every stored vector: bump LOCAL_MODEL_NAME.
        let v = embed("deploy failed", 8);
        let rounded: Vec<i32> = v.iter().map(|x| (x * 1000.0).round() as i32).collect();
        assert_eq!(rounded, vec![0, 833, -167, -333, 167, 0, 167, -333]);
    }

    #[test]
    fn shared_words_and_morphology_are_closer_than_unrelated_text() {
        let a = embed("the deploy pipeline failed at the migration step", 384);
        let b = embed("deployment of the pipeline fails during migration", 384);
        let c = embed("customer asked about invoice due dates", 384);
        assert!(cos(&a, &b) > cos(&a, &c) + 0.2, "{} vs {}", cos(&a, &b), cos(&a, &c));
        let x = embed("dog bites man", 384);
        let y = embed("man bites dog", 384);
        let s = cos(&x, &y);
        assert!(s > 0.5 && s < 0.999, "word order matters a little: {s}");
    }
}
