//! Needs the weights (`make models` fetches them; `make test` does it first).

use super::*;
use serde::Deserialize;
use std::sync::OnceLock;

/// `$CAIRN_AI_MODELS/all-minilm-l6-v2`, default `~/.cache/cairn/ai-models/...`.
fn model_dir() -> PathBuf {
    let root = std::env::var_os("CAIRN_AI_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/cairn/ai-models"));
    root.join(MODEL_NAME)
}

fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(&model_dir()).unwrap_or_else(|e| panic!("{e}")))
}

fn cos(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<ReferenceRow>,
}

#[derive(Deserialize)]
struct ReferenceRow {
    text: String,
    token_ids: Vec<u32>,
    vector: Vec<f64>,
}

/// tests/fixtures/reference.json was made by tools/minilm_reference.py: its
/// own WordPiece, its own safetensors reader and a numpy float64 forward
/// pass, no code shared with this crate.
#[test]
fn matches_an_independent_reference() {
    let reference: Reference = serde_json::from_str(include_str!("../tests/fixtures/reference.json")).unwrap();
    let m = model();
    for row in &reference.sentences {
        let ids = m.tokenizer.encode(row.text.as_str(), true).unwrap().get_ids().to_vec();
        assert_eq!(ids, row.token_ids, "token ids of {:?}", row.text);
        let v = &m.embed(&[row.text.as_str()]).unwrap()[0];
        assert_eq!(v.len(), DIMS);
        let expected: Vec<f32> = row.vector.iter().map(|&x| x as f32).collect();
        let c = cos(v, &expected);
        let max_diff = v.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(c > 0.99999 && max_diff < 1e-4, "{:?}: cos {c}, max |diff| {max_diff}", row.text);
    }
}

#[test]
fn a_vector_does_not_depend_on_its_batch() {
    let texts = [
        "short",
        "a somewhat longer sentence about painting a sunrise by the lake last summer",
        "Melanie: I ran a charity race for mental health last Saturday, it was rewarding.",
        "ok",
    ];
    let m = model();
    let batched = m.embed(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batched) {
        let single = &m.embed(&[t]).unwrap()[0];
        let c = cos(single, b);
        assert!(c >= 0.9999, "{t:?}: batched vs single cos {c}");
        let norm: f64 = cos(b, b).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length, got {norm}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let m = model();
    let v = m
        .embed(&[
            "When did Melanie paint a sunrise?",
            "Melanie painted a picture of the sun coming up over the lake last year.",
            "The quarterly tax filing deadline is next Tuesday.",
            "How do I reset my router password?",
            "What is the way to change the password on my wifi modem?",
        ])
        .unwrap();
    assert!(cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2, "{} vs {}", cos(&v[0], &v[1]), cos(&v[0], &v[2]));
    assert!(cos(&v[3], &v[4]) > cos(&v[3], &v[2]) + 0.2);
}

#[test]
fn long_inputs_are_truncated_and_empty_batches_are_empty() {
    let m = model();
    let long = "memory ".repeat(2000);
    let v = m.embed(&[long.as_str(), ""]).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|x| x.len() == DIMS && x.iter().all(|f| f.is_finite())));
    assert!(m.embed(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_or_broken_model_directory_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("cairn-minilm-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = MiniLm::load(&dir).err().expect("no files").to_string();
    assert!(err.contains("lacks model.safetensors") && err.contains("make models"), "{err}");
    for f in MODEL_FILES {
        std::fs::write(dir.join(f), b"not a model").unwrap();
    }
    let err = MiniLm::load(&dir).err().expect("garbage files").to_string();
    assert!(err.contains("could not be loaded") && err.contains(&dir.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
