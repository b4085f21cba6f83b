//! Embeds each line of stdin; prints one JSON array of 384 floats per line.
//!
//!     cargo run --release -p cairn-minilm --example embed_lines -- ~/.cache/cairn/ai-models/all-minilm-l6-v2 < texts.txt

use std::io::{BufRead, Write};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: embed_lines <model dir> < lines");
    let model = cairn_minilm::MiniLm::load(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<String> = std::io::stdin().lock().lines().map(|l| l.expect("utf-8 line")).collect();
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for chunk in lines.chunks(256) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for v in model.embed(&refs).unwrap_or_else(|e| panic!("{e}")) {
            serde_json::to_writer(&mut out, &v).unwrap();
            writeln!(out).unwrap();
        }
    }
    eprintln!("{} texts in {:.1} s", lines.len(), started.elapsed().as_secs_f64());
}
