//! The built-in embedder: deterministic, lexical feature hashing.
//!
//! The text is lowercased and split into words (runs of Unicode letters and
//! digits). Its features are the words (weight 1), pairs of adjacent words
//! (0.5) and the character trigrams of each word with boundary marks —
//! `deploy` gives `^de`, `dep`, ..., `oy$` (0.25). Each feature is hashed
//! with FNV-1a 64 plus a fixed bit mixer to one dimension and a sign; a
//! feature seen `tf` times counts `1 + ln tf`; the vector is L2-normalized.
//! The hash is written out here rather than taken from std, whose hashers
//! may change between releases, and the sums run in a fixed order: the
//! same text gives the same vector, bit for bit, on every build and
//! machine. (One caveat: lowercasing and what counts as a letter follow
//! std's Unicode tables, so characters new in a later Unicode version can
//! tokenize differently after a toolchain upgrade.)
//!
//! What it captures: shared words; local word order, through the word pairs
//! ("dog bites man" and "man bites dog" are close but not identical);
//! spelling variants and morphology, through the trigrams ("deploy" is near
//! "deployed", a typo still shares most trigrams). What it does not: synonyms
//! ("car" and "automobile" share nothing), paraphrase, negation, meaning of
//! any kind, similarity across languages. Scripts written without spaces
//! (Chinese, Japanese) become one long "word" per run, so they are matched
//! on trigrams only.
//!
//! It is not `all-minilm-l6-v2` and its scores are not comparable to that
//! model's: it is a stand-in so that derivation, the vector index and every
//! test run offline and reproducibly. For semantic recall, configure the
//! OpenAI-compatible embedder instead. Any change to the output (features,
//! weights, hash) must come with a new [`LOCAL_MODEL_NAME`], since stored
//! vectors are labelled with it.

/// The label derived vectors carry when this embedder made them.
pub const LOCAL_MODEL_NAME: &str = "local:lexical-hash-v2";

const WORD_WEIGHT: f64 = 1.0;
const BIGRAM_WEIGHT: f64 = 0.5;
const TRIGRAM_WEIGHT: f64 = 0.25;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `bytes`, continuing from state `h` (so a feature can be
/// hashed piece by piece without building a string).
#[inline]
const fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

// One seed per feature kind, so that equal bytes of different kinds hash apart.
const WORD_SEED: u64 = fnv1a(FNV_OFFSET, b"w");
const BIGRAM_SEED: u64 = fnv1a(FNV_OFFSET, b"b");
const TRIGRAM_SEED: u64 = fnv1a(FNV_OFFSET, b"t");

/// MurmurHash3's 64-bit finalizer. FNV's low bits depend only on the low
/// bits of the input bytes, which would bunch features together whenever
/// `dims` is a small power of two; mixing spreads every input bit.
#[inline]
const fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The embedding of `text` in `dims` dimensions: unit length, or all zeros
/// when the text has no letters or digits.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims];
    if dims == 0 {
        return v;
    }
    let mut f = Features::of(&text.to_lowercase());
    // Kinds in a fixed order and hashes sorted: the float sums below always
    // run in the same order, so the result is bit-for-bit reproducible.
    accumulate(&mut v, &mut f.words, WORD_WEIGHT);
    accumulate(&mut v, &mut f.bigrams, BIGRAM_WEIGHT);
    accumulate(&mut v, &mut f.trigrams, TRIGRAM_WEIGHT);
    normalize(&mut v);
    v
}

/// The unmixed feature hashes of a lowercased text, one entry per occurrence.
struct Features {
    words: Vec<u64>,
    bigrams: Vec<u64>,
    trigrams: Vec<u64>,
}

impl Features {
    fn of(lower: &str) -> Features {
        let mut f = Features {
            words: Vec::with_capacity(lower.len() / 4 + 1),
            bigrams: Vec::with_capacity(lower.len() / 4 + 1),
            trigrams: Vec::with_capacity(lower.len() + 1),
        };
        let mut bounds = Vec::new();
        let mut prev: Option<u64> = None;
        for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = fnv1a(WORD_SEED, word.as_bytes());
            f.words.push(h);
            if let Some(p) = prev {
                f.bigrams.push(fnv1a(fnv1a(BIGRAM_SEED, &p.to_le_bytes()), &h.to_le_bytes()));
            }
            prev = Some(h);
            push_trigrams(&mut f.trigrams, word, &mut bounds);
        }
        f
    }
}

/// Pushes the hashes of the character trigrams of `^word$`: one per char.
/// `bounds` is scratch space for the char offsets of non-ASCII words.
fn push_trigrams(out: &mut Vec<u64>, word: &str, bounds: &mut Vec<usize>) {
    let ascii = word.is_ascii();
    if !ascii {
        bounds.clear();
        bounds.extend(word.char_indices().map(|(i, _)| i));
        bounds.push(word.len());
    }
    let n = if ascii { word.len() } else { bounds.len() - 1 };
    let offset = |i: usize| if ascii { i } else { bounds[i] };
    // Trigram k spans padded chars k..k+2, i.e. word chars k-1..=k+1, with
    // `^` standing in for char -1 and `$` for char n. Neither can occur in
    // a word, so the byte strings hashed are unambiguous.
    for k in 0..n {
        let bytes = &word.as_bytes()[offset(k.saturating_sub(1))..offset((k + 2).min(n))];
        let mut h = TRIGRAM_SEED;
        if k == 0 {
            h = fnv1a(h, b"^");
        }
        h = fnv1a(h, bytes);
        if k + 1 == n {
            h = fnv1a(h, b"$");
        }
        out.push(h);
    }
}

/// Adds each distinct feature of `hashes` to `v`, at its dimension with its
/// sign, weighted `weight * (1 + ln tf)`.
fn accumulate(v: &mut [f32], hashes: &mut [u64], weight: f64) {
    hashes.sort_unstable();
    for run in hashes.chunk_by(|a, b| a == b) {
        let value = (weight * damped(run.len())) as f32;
        let (index, negative) = place(run[0], v.len());
        v[index] += if negative { -value } else { value };
    }
}

/// `1 + ln tf`. Computed in f64 and rounded once to f32 by the caller, so
/// libm's last-bit differences between platforms cannot show; most features
/// occur once, which needs no logarithm at all.
#[inline]
fn damped(tf: usize) -> f64 {
    if tf == 1 { 1.0 } else { 1.0 + (tf as f64).ln() }
}

/// The dimension and sign of a feature: the dimension from the high bits
/// of the mixed hash (multiply-shift, no division), the sign from the
/// lowest bit.
#[inline]
fn place(hash: u64, dims: usize) -> (usize, bool) {
    let m = mix(hash);
    (((m as u128 * dims as u128) >> 64) as usize, m & 1 == 1)
}

/// Scales `v` to unit length (a zero vector stays zero). The norm is summed
/// in f64 so long vectors lose no precision.
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
    }

    fn norm(a: &[f32]) -> f64 {
        cos(a, a).sqrt()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        // Incremental hashing is the same as hashing the concatenation.
        assert_eq!(fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"), fnv1a(FNV_OFFSET, b"foobar"));
    }

    #[test]
    fn the_same_text_gives_the_same_bits() {
        let text = "Alice deployed v2 to production; the migration step failed twice, twice!";
        for dims in [16, 384, 1536] {
            assert_eq!(bits(&embed(text, dims)), bits(&embed(text, dims)));
        }
    }

    #[test]
    fn golden_components_do_not_drift() {
        // These values change only if the features, weights or hash change,
        // and then every stored vector is stale: bump LOCAL_MODEL_NAME.
        let v = embed("The deploy failed at the migration step", 16);
        let golden = [(0, 0.29287001), (1, 0.0), (2, -0.123968005), (3, 0.3660875), (9, -0.2421195), (15, -0.5466225)];
        for (i, want) in golden {
            assert_eq!(v[i], want, "component {i} of {v:?}");
        }
    }

    #[test]
    fn vectors_have_unit_length_and_the_requested_size() {
        for dims in [1, 16, 384, 1536] {
            for text in ["deploy failed", "a", "Ünïcödé wörds 東京 2024", "x x x x x x"] {
                let v = embed(text, dims);
                assert_eq!(v.len(), dims);
                assert!((norm(&v) - 1.0).abs() < 1e-6, "{text:?} at {dims}: {}", norm(&v));
            }
        }
        assert!(embed("deploy failed", 0).is_empty());
    }

    #[test]
    fn text_without_words_gives_the_zero_vector() {
        for text in ["", "   ", " ,;! -- ... ", "\n\t"] {
            let v = embed(text, 384);
            assert_eq!(v.len(), 384);
            assert!(v.iter().all(|x| x.to_bits() == 0), "{text:?}");
        }
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        assert_eq!(bits(&embed("Deploy FAILED!", 384)), bits(&embed("deploy, failed", 384)));
    }

    #[test]
    fn shared_words_are_closer_than_unrelated_text() {
        let a = embed("the deploy pipeline failed at the migration step", 384);
        let b = embed("migration step of the deploy pipeline failed again", 384);
        let c = embed("customer asked about invoice due dates", 384);
        let (ab, ac) = (cos(&a, &b), cos(&a, &c));
        assert!(ab > 0.5 && ab > ac + 0.4, "shared {ab} vs unrelated {ac}");
    }

    #[test]
    fn spelling_variants_share_trigrams() {
        let deploy = embed("deploy", 384);
        let (deployed, invoice) = (embed("deployed", 384), embed("invoice", 384));
        // Different words, so the unigrams differ; five of six trigrams agree.
        let (near, far) = (cos(&deploy, &deployed), cos(&deploy, &invoice));
        assert!(near > 0.2 && near > far + 0.15, "{near} vs {far}");
    }

    #[test]
    fn word_order_matters_a_little() {
        let (x, y) = (embed("dog bites man", 384), embed("man bites dog", 384));
        let s = cos(&x, &y);
        assert!(s > 0.7 && s < 0.99, "{s}");
    }

    #[test]
    fn features_spread_evenly_over_small_power_of_two_dims() {
        // 1600 similar words over 16 dimensions: 100 expected in each, sd 10.
        let mut counts = [0usize; 16];
        let mut signs = 0;
        for i in 0..1600 {
            let (index, negative) = place(fnv1a(WORD_SEED, format!("w{i}").as_bytes()), 16);
            counts[index] += 1;
            signs += usize::from(negative);
        }
        assert!(counts.iter().all(|c| (60..=140).contains(c)), "{counts:?}");
        assert!((700..=900).contains(&signs), "{signs} negative of 1600");
    }

    #[test]
    fn non_ascii_words_do_not_panic_and_match_their_variants() {
        let a = embed("Größenänderung İstanbul ΟΔΥΣΣΕΥΣ 東京タワー", 384);
        let b = embed("größenänderung istanbul οδυσσευς 東京", 384);
        assert!(cos(&a, &b) > 0.3, "{}", cos(&a, &b));
    }
}
