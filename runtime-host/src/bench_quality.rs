//! `cairn bench quality`: recall quality on a LoCoMo-format dataset (a JSON
//! list of conversations, e.g. `../shared/data/locomo-dev/locomo-dev.json`,
//! read where it lies).
//!
//! Each conversation becomes a scope; each session one write, its turns
//! events in order (`client_id` = the turn's `dia_id`, `text_summary` =
//! `"<speaker>: <text>"`, the speaker, session and session date in
//! `slots`). Derivation runs to the end (embeddings, topics, the index);
//! then every question that is not adversarial (category 5) and whose
//! evidence names real turns goes through `recall_text`. Scores count the
//! evidence turns among the first k entries of the answer's `seeds` (or
//! `ranked`, `--list ranked`), every node type taking a place: recall@k =
//! evidence found / evidence, hit@k = any found, MRR = 1 / rank of the first.

use crate::bench::{BenchRun, HttpClient, percentile, post, start_server, temp_data_dir};
use anyhow::{Context, Result, bail};
use clap::Args;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct QualityBench {
    /// A LoCoMo-format JSON file: a list of {sample_id, conversation, qa}.
    #[arg(long)]
    dataset: PathBuf,
    /// `stage1_mode` sent with each question (default: the server's, hybrid).
    #[arg(long)]
    mode: Option<String>,
    /// `stage1_lexical_weight` sent with each question.
    #[arg(long)]
    lexical_weight: Option<f64>,
    /// `stage1_neighbor_weight` sent with each question.
    #[arg(long)]
    neighbor_weight: Option<f64>,
    /// Recall `limit` (default: the profile's, 24).
    #[arg(long)]
    limit: Option<i64>,
    /// Which list of the answer is scored: `seeds` (stage 1) or `ranked`
    /// (after spreading activation).
    #[arg(long, default_value = "seeds")]
    list: String,
    #[command(flatten)]
    run: BenchRun,
}

const KS: [usize; 4] = [1, 5, 10, 20];
const CATEGORIES: [(i64, &str); 4] = [(4, "single-hop"), (1, "multi-hop"), (2, "temporal"), (3, "open-domain")];

/// One conversation's writes (a body per session) and questions.
struct Conversation {
    scope: String,
    sessions: Vec<Value>,
    questions: Vec<Question>,
}

struct Question {
    text: String,
    category: i64,
    evidence: Vec<String>,
}

/// Reads the dataset into writes and questions; questions whose evidence
/// names no real turn are left out (counted).
fn load(path: &std::path::Path) -> Result<(Vec<Conversation>, usize)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(list) = doc.as_array() else { bail!("{}: expected a JSON list of conversations", path.display()) };
    let mut out = Vec::new();
    let mut skipped = 0;
    for (ci, c) in list.iter().enumerate() {
        let scope = c["sample_id"].as_str().map(str::to_string).unwrap_or_else(|| format!("conv-{ci}"));
        let conv = c["conversation"].as_object().with_context(|| format!("{scope}: no `conversation`"))?;
        let mut numbers: Vec<u32> = conv
            .keys()
            .filter_map(|k| k.strip_prefix("session_")?.parse().ok())
            .filter(|n| conv.get(&format!("session_{n}")).is_some_and(Value::is_array))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut turns = HashSet::new();
        let mut sessions = Vec::new();
        for n in numbers {
            let date = conv.get(&format!("session_{n}_date_time")).and_then(Value::as_str).unwrap_or_default();
            let nodes: Vec<Value> = conv[&format!("session_{n}")]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let id = t["dia_id"].as_str()?;
                    let speaker = t["speaker"].as_str().unwrap_or("someone");
                    turns.insert(id.to_string());
                    Some(json!({
                        "client_id": id, "type": "event", "memory_lane": "shared",
                        "text_summary": format!("{speaker}: {}", t["text"].as_str().unwrap_or_default()),
                        "slots": {"speaker": speaker, "session": n, "session_date": date},
                    }))
                })
                .collect();
            sessions
                .push(json!({"scope": scope, "input_text": format!("{scope} session {n} ({date})"), "nodes": nodes}));
        }
        let mut questions = Vec::new();
        for q in c["qa"].as_array().into_iter().flatten() {
            let category = q["category"].as_i64().unwrap_or(0);
            if category == 5 {
                continue;
            }
            let evidence: Vec<String> =
                q["evidence"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect();
            if evidence.is_empty() || evidence.iter().any(|e| !turns.contains(e)) {
                skipped += 1;
                continue;
            }
            questions.push(Question {
                text: q["question"].as_str().unwrap_or_default().to_string(),
                category,
                evidence,
            });
        }
        out.push(Conversation { scope, sessions, questions });
    }
    Ok((out, skipped))
}

/// Scores of one question.
struct Row {
    scope: String,
    category: i64,
    recall: [f64; 4],
    hit5: bool,
    hit10: bool,
    rr: f64,
    /// Places of the first 10 taken by nodes that are not turns.
    non_turns_in_top10: usize,
    top: Vec<String>,
    evidence: Vec<String>,
    latency: Duration,
}

fn score(q: &Question, returned: &[Option<String>]) -> (Vec<f64>, bool, bool, f64, usize) {
    let pos: HashMap<&str, usize> =
        returned.iter().enumerate().filter_map(|(i, r)| r.as_deref().map(|r| (r, i))).rev().collect();
    let found_within = |k: usize| q.evidence.iter().filter(|e| pos.get(e.as_str()).is_some_and(|&p| p < k)).count();
    let recall = KS.iter().map(|&k| found_within(k) as f64 / q.evidence.len() as f64).collect();
    let best = q.evidence.iter().filter_map(|e| pos.get(e.as_str())).min();
    let rr = best.map_or(0.0, |&p| 1.0 / (p as f64 + 1.0));
    let non_turns = returned.iter().take(10).filter(|r| r.is_none()).count();
    (recall, found_within(5) > 0, found_within(10) > 0, rr, non_turns)
}

pub async fn run(b: QualityBench) -> Result<()> {
    if b.list != "seeds" && b.list != "ranked" {
        bail!("--list must be seeds or ranked");
    }
    let (convs, skipped) = load(&b.dataset)?;
    let n_questions: usize = convs.iter().map(|c| c.questions.len()).sum();
    let n_turns: usize =
        convs.iter().flat_map(|c| &c.sessions).map(|s| s["nodes"].as_array().map_or(0, Vec::len)).sum();
    let temp = b.run.data_dir.is_none();
    let data_dir = b.run.data_dir.clone().unwrap_or_else(|| temp_data_dir("quality"));
    let server = start_server(&b.run.app, &data_dir).await.context("starting the server")?;
    let embedder = server.app.llm.embedder.label();
    eprintln!(
        "cairn bench quality: {} conversations, {n_turns} turns, {n_questions} questions ({skipped} skipped), embedder {embedder}",
        convs.len()
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(8).build_http();

    // Ingest: node id -> dia_id, per scope.
    let t = Instant::now();
    let mut turn_of: HashMap<String, String> = HashMap::new();
    for c in &convs {
        for s in &c.sessions {
            let (status, resp) = post(&client, &format!("{}/v1/memory/write", server.base), s).await?;
            if status != 200 {
                bail!("write for {} failed with {status}: {resp}", c.scope);
            }
            for n in resp["nodes"].as_array().into_iter().flatten() {
                if let (Some(id), Some(cid)) = (n["id"].as_str(), n["client_id"].as_str()) {
                    turn_of.insert(id.to_string(), cid.to_string());
                }
            }
        }
        eprintln!("  ingested {} ({} sessions)", c.scope, c.sessions.len());
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let drained = crate::bench_recall::drain(&server.app).await?;
    let derive_secs = t.elapsed().as_secs_f64();
    eprintln!("  derivation done in {derive_secs:.1} s (index build {} ms)", drained.1);

    let mut rows: Vec<Row> = Vec::with_capacity(n_questions);
    let url = format!("{}/v1/memory/recall_text", server.base);
    let mut asked = 0;
    for c in &convs {
        for q in &c.questions {
            let mut body = json!({"scope": c.scope, "query_text": q.text});
            if let Some(m) = &b.mode {
                body["stage1_mode"] = json!(m);
            }
            if let Some(w) = b.lexical_weight {
                body["stage1_lexical_weight"] = json!(w);
            }
            if let Some(w) = b.neighbor_weight {
                body["stage1_neighbor_weight"] = json!(w);
            }
            if let Some(l) = b.limit {
                body["limit"] = json!(l);
            }
            let t = Instant::now();
            let (status, resp) = post(&client, &url, &body).await?;
            let latency = t.elapsed();
            if status != 200 {
                bail!("recall_text failed with {status}: {resp}");
            }
            let returned: Vec<Option<String>> = resp[b.list.as_str()]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["id"].as_str().and_then(|id| turn_of.get(id)).cloned())
                .collect();
            let (recall, hit5, hit10, rr, non_turns) = score(q, &returned);
            rows.push(Row {
                scope: c.scope.clone(),
                category: q.category,
                recall: [recall[0], recall[1], recall[2], recall[3]],
                hit5,
                hit10,
                rr,
                non_turns_in_top10: non_turns,
                top: returned.iter().take(20).map(|r| r.clone().unwrap_or_else(|| "(not a turn)".into())).collect(),
                evidence: q.evidence.clone(),
                latency,
            });
            asked += 1;
            if asked % 100 == 0 {
                eprintln!("  asked {asked}/{n_questions}");
            }
        }
    }

    let summary = |rs: &[&Row]| -> Value {
        let n = rs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Row) -> f64| (rs.iter().map(|r| f(r)).sum::<f64>() / n * 1000.0).round() / 1000.0;
        json!({
            "questions": rs.len(),
            "recall@1": mean(&|r| r.recall[0]), "recall@5": mean(&|r| r.recall[1]),
            "recall@10": mean(&|r| r.recall[2]), "recall@20": mean(&|r| r.recall[3]),
            "hit@5": mean(&|r| f64::from(u8::from(r.hit5))), "hit@10": mean(&|r| f64::from(u8::from(r.hit10))),
            "mrr": mean(&|r| r.rr),
            "non_turns_in_top10": mean(&|r| r.non_turns_in_top10 as f64),
        })
    };
    let all: Vec<&Row> = rows.iter().collect();
    let mut by_category = BTreeMap::new();
    for (cat, name) in CATEGORIES {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.category == cat).collect();
        by_category.insert(name, summary(&rs));
    }
    let mut lat: Vec<Duration> = rows.iter().map(|r| r.latency).collect();
    lat.sort();
    let result = json!({
        "bench": "quality",
        "dataset": b.dataset.display().to_string(),
        "embedder": embedder,
        "list": b.list,
        "stage1_mode": b.mode.clone().unwrap_or_else(|| "hybrid".into()),
        "conversations": convs.len(), "turns": n_turns, "skipped_questions": skipped,
        "ingest_seconds": ingest_secs, "derive_seconds": derive_secs,
        "recall_text_p50_ms": percentile(&lat, 50.0), "recall_text_p95_ms": percentile(&lat, 95.0),
        "overall": summary(&all),
        "by_category": by_category,
    });
    if b.run.json {
        let raw: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"scope": r.scope, "category": r.category, "evidence": r.evidence, "top": r.top,
                       "recall@5": r.recall[1], "recall@10": r.recall[2], "rr": r.rr,
                       "latency_ms": r.latency.as_secs_f64() * 1000.0})
            })
            .collect();
        let mut out = result.clone();
        out["rows"] = Value::Array(raw);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "cairn bench quality: {} ({} conversations, {n_turns} turns), embedder {embedder}, {} list, stage1 {}",
            b.dataset.display(),
            convs.len(),
            b.list,
            result["stage1_mode"].as_str().unwrap_or("hybrid")
        );
        println!("  ingest {ingest_secs:.1} s, derive {derive_secs:.1} s");
        println!(
            "  {:<12} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9}",
            "category", "n", "r@1", "r@5", "r@10", "r@20", "hit@5", "hit@10", "mrr", "non-turns"
        );
        let line = |name: &str, s: &Value| {
            println!(
                "  {:<12} {:>5} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>9.2}",
                name,
                s["questions"],
                s["recall@1"].as_f64().unwrap_or(0.0),
                s["recall@5"].as_f64().unwrap_or(0.0),
                s["recall@10"].as_f64().unwrap_or(0.0),
                s["recall@20"].as_f64().unwrap_or(0.0),
                s["hit@5"].as_f64().unwrap_or(0.0),
                s["hit@10"].as_f64().unwrap_or(0.0),
                s["mrr"].as_f64().unwrap_or(0.0),
                s["non_turns_in_top10"].as_f64().unwrap_or(0.0),
            )
        };
        for (name, s) in &result["by_category"].as_object().cloned().unwrap_or_default() {
            line(name, s);
        }
        line("overall", &result["overall"]);
        println!(
            "  recall_text p50 {:.1} ms, p95 {:.1} ms (one client, one question at a time)",
            percentile(&lat, 50.0),
            percentile(&lat, 95.0)
        );
    }
    server.shutdown(&data_dir, temp && !b.run.keep).await;
    Ok(())
}
