//! Times all-MiniLM-L6-v2 on this machine: single short queries (the
//! recall_text case) and batches of conversation turns (derivation).
//!
//!     cargo run --release -p cairn-minilm --example embed_speed -- ~/.cache/cairn/ai-models/all-minilm-l6-v2 [single]
//!
//! `single` times the single queries alone (for a profiler).

use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: embed_speed <model dir>");
    let model = cairn_minilm::MiniLm::load(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let queries = [
        "When did Melanie paint a sunrise?",
        "What did Caroline research?",
        "Where did Caroline move from 4 years ago?",
    ];
    for q in &queries {
        model.embed(&[q]).unwrap();
    }
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        model.embed(&[queries[i % queries.len()]]).unwrap();
    }
    println!("single query: {:.2} ms each", t.elapsed().as_secs_f64() * 1000.0 / n as f64);
    if std::env::args().nth(2).as_deref() == Some("single") {
        return;
    }
    let turn = "Melanie: That's great! I painted a sunrise over the lake last summer, and the kids loved it so much.";
    for batch in [1usize, 8, 32, 64] {
        let texts: Vec<&str> = (0..batch).map(|_| turn).collect();
        let rounds = (256 / batch).max(4);
        let t = Instant::now();
        for _ in 0..rounds {
            model.embed(&texts).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("batch {batch:>3}: {:.0} texts/s", (rounds * batch) as f64 / secs);
    }
}
