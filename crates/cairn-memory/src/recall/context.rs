//! The context block of a recall (reference §6.2 step 7): a text an agent
//! can paste into its prompt, the `items` behind it and their `citations`.
//!
//! From the ranked nodes (best first, draft topics skipped): up to 4
//! topics/concepts, 6 entities, 10 events/evidence and 6 rules. When a
//! selected concept is a compression rollup (`slots.summary_kind =
//! "compression_rollup"`), up to 24 events are considered, those its
//! `slots.citations[].node_id` already cover are dropped, and 5 remain.
//! The text has one section per kind:
//!
//! ```text
//! # Topics / Concepts
//! - <title|id>[: <summary>] (node:<id>)
//! - <title|id>[: <summary>] (node:<id>, compression, covers=<n>)
//!   evidence_node=<id>
//!
//! # Entities
//! - <title|id>[: <summary>] (node:<id>)
//!
//! # Supporting Events / Evidence
//! - <summary|(no summary)> (node:<id>[, raw_ref=..][, evidence_ref=..])
//!
//! # Applicable Rules (Shadow/Active)
//! - state=<s>[ scope=<rs>][ target_agent=..| target_team=..][ pos=P neg=N] summary=<s|(none)> (node:<id>)
//!   if=<json>
//!   then=<json>
//! ```
//!
//! **Compaction.** A budget (`context_char_budget`, at least 160, or
//! `4 × context_token_budget`) or the `aggressive` profile turns on compact
//! mode: at most 5 (balanced) / 2 (aggressive) event lines — this cut also
//! applies to `items` and `citations`, as in the reference code — and 2 / 1
//! `evidence_node` lines per rollup; aggressive drops rule `if=`/`then=`
//! lines. While the text exceeds the budget, the least important line
//! (importance: topic 10, rule 20, entity 40, event 70, rule json 80,
//! rollup evidence 90, plus a per-section bias) is dropped; the last line
//! always stays. Lengths count characters (the reference counts UTF-16
//! units; they differ only outside the Basic Multilingual Plane).

use crate::node_dto::node_uri;
use crate::stored_rows::StoredNode;
use cairn_core::canonical_json::js_number;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// A rule's definition as context needs it.
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub state: String,
    pub rule_scope: Option<String>,
    pub target_agent_id: Option<String>,
    pub target_team_id: Option<String>,
    pub if_json: Value,
    pub then_json: Value,
    pub exceptions_json: Value,
    pub positive_count: i64,
    pub negative_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionProfile {
    Balanced,
    Aggressive,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ContextOptions {
    pub token_budget: Option<i64>,
    pub char_budget: Option<i64>,
    pub profile: Option<CompactionProfile>,
}

pub struct BuiltContext {
    pub text: String,
    pub items: Vec<Value>,
    pub citations: Vec<Value>,
    /// `debug.context_compaction`.
    pub compaction: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Topics,
    Entities,
    Events,
    Rules,
}

const SECTIONS: [(Section, &str, &str); 4] = [
    (Section::Topics, "topics", "Topics / Concepts"),
    (Section::Entities, "entities", "Entities"),
    (Section::Events, "events", "Supporting Events / Evidence"),
    (Section::Rules, "rules", "Applicable Rules (Shadow/Active)"),
];

struct Policy {
    bias: [i64; 4],
    max_topic_evidence_lines: usize,
    max_event_lines_compact: usize,
    include_rule_json_lines: bool,
}

fn policy(p: CompactionProfile) -> Policy {
    match p {
        CompactionProfile::Balanced => Policy {
            bias: [0, 10, 40, 5],
            max_topic_evidence_lines: 2,
            max_event_lines_compact: 5,
            include_rule_json_lines: true,
        },
        CompactionProfile::Aggressive => Policy {
            bias: [0, 20, 80, 10],
            max_topic_evidence_lines: 1,
            max_event_lines_compact: 2,
            include_rule_json_lines: false,
        },
    }
}

struct Line {
    section: Section,
    text: String,
    importance: i64,
    active: bool,
}

/// Where URIs point: `(tenant_id, scope)` as the client names them.
pub type UriBase<'a> = Option<(&'a str, &'a str)>;

fn is_draft_topic(n: &StoredNode) -> bool {
    super::subgraph::is_draft_topic(n)
}

fn is_compression_concept(n: &StoredNode) -> bool {
    n.node_type == "concept" && n.slots.get("summary_kind").and_then(Value::as_str) == Some("compression_rollup")
}

fn pick_top<'a>(ranked: &[&'a StoredNode], types: &[&str], limit: usize) -> Vec<&'a StoredNode> {
    ranked.iter().copied().filter(|n| types.contains(&n.node_type.as_str()) && !is_draft_topic(n)).take(limit).collect()
}

/// The `node_id`s a rollup's `slots.citations` lists.
fn cited_ids(n: &StoredNode) -> Vec<&str> {
    n.slots
        .get("citations")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c.get("node_id").and_then(Value::as_str)).collect())
        .unwrap_or_default()
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// The reference's token estimate: `ceil(chars / 4)`, at least 1 for text.
pub fn estimate_tokens(text: &str) -> usize {
    let c = chars(text);
    if c == 0 { 0 } else { c.div_ceil(4).max(1) }
}

fn render(lines: &[Line]) -> String {
    let mut out = String::new();
    for (section, _, title) in SECTIONS {
        let mut active = lines.iter().filter(|l| l.section == section && l.active).peekable();
        if active.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str("# ");
        out.push_str(title);
        for l in active {
            out.push('\n');
            out.push_str(&l.text);
        }
    }
    out
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// Builds the context from the ranked nodes.
pub fn build(
    ranked: &[&StoredNode],
    rule_defs: &HashMap<String, RuleDef>,
    opts: &ContextOptions,
    uri_base: UriBase,
) -> BuiltContext {
    let profile = opts.profile.unwrap_or(CompactionProfile::Balanced);
    let pol = policy(profile);
    let token_budget = opts.token_budget.filter(|t| *t > 0).map(|t| t.max(1));
    let char_budget = match opts.char_budget.filter(|c| *c > 0) {
        Some(c) => Some(c.max(160)),
        None => token_budget.map(|t| (t * 4).max(160)),
    };
    let compact = char_budget.is_some() || profile == CompactionProfile::Aggressive;
    let uri = |n: &StoredNode| uri_base.map(|(t, s)| node_uri(t, s, &n.node_type, &n.id));

    let mut items: Vec<Value> = Vec::new();
    let mut citations: Vec<Value> = Vec::new();
    let mut cited: HashSet<String> = HashSet::new();
    let mut cite = |n: &StoredNode, citations: &mut Vec<Value>| {
        if cited.insert(n.id.clone()) {
            let mut c = Map::new();
            c.insert("node_id".into(), json!(n.id));
            if let Some(u) = uri(n) {
                c.insert("uri".into(), json!(u));
            }
            c.insert("commit_id".into(), json!(n.commit_id));
            c.insert("raw_ref".into(), opt(&n.raw_ref));
            c.insert("evidence_ref".into(), opt(&n.evidence_ref));
            citations.push(Value::Object(c));
        }
    };
    let item = |kind: &str, n: &StoredNode| {
        let mut m = Map::new();
        m.insert("kind".into(), json!(kind));
        m.insert("node_id".into(), json!(n.id));
        if let Some(u) = uri(n) {
            m.insert("uri".into(), json!(u));
        }
        m
    };

    let topics = pick_top(ranked, &["topic", "concept"], 4);
    let has_rollup = topics.iter().any(|n| is_compression_concept(n));
    for n in &topics {
        let mut m = item(&n.node_type, n);
        if let Some(t) = &n.title {
            m.insert("title".into(), json!(t));
        }
        if let Some(s) = &n.text_summary {
            m.insert("summary".into(), json!(s));
        }
        m.insert("commit_id".into(), json!(n.commit_id));
        items.push(Value::Object(m));
        cite(n, &mut citations);
    }
    let entities = pick_top(ranked, &["entity"], 6);
    for n in &entities {
        let mut m = item("entity", n);
        if let Some(t) = &n.title {
            m.insert("title".into(), json!(t));
        }
        if let Some(s) = &n.text_summary {
            m.insert("summary".into(), json!(s));
        }
        m.insert("commit_id".into(), json!(n.commit_id));
        items.push(Value::Object(m));
        cite(n, &mut citations);
    }
    let raw_events = pick_top(ranked, &["event", "evidence"], if has_rollup { 24 } else { 10 });
    let mut events: Vec<&StoredNode> = if has_rollup {
        let covered: HashSet<&str> =
            topics.iter().filter(|n| is_compression_concept(n)).flat_map(|n| cited_ids(n)).collect();
        raw_events.into_iter().filter(|n| !covered.contains(n.id.as_str())).take(5).collect()
    } else {
        raw_events
    };
    if compact {
        events.truncate(pol.max_event_lines_compact);
    }
    for n in &events {
        let mut m = item(&n.node_type, n);
        if let Some(s) = &n.text_summary {
            m.insert("summary".into(), json!(s));
        }
        m.insert("raw_ref".into(), opt(&n.raw_ref));
        m.insert("evidence_ref".into(), opt(&n.evidence_ref));
        m.insert("commit_id".into(), json!(n.commit_id));
        items.push(Value::Object(m));
        cite(n, &mut citations);
    }
    let rules = pick_top(ranked, &["rule"], 6);
    let slot = |n: &StoredNode, k: &str| n.slots.get(k).cloned().filter(|v| !v.is_null());
    for n in &rules {
        let d = rule_defs.get(&n.id);
        let mut m = item("rule", n);
        if let Some(d) = d {
            m.insert("state".into(), json!(d.state));
            if let Some(s) = &d.rule_scope {
                m.insert("rule_scope".into(), json!(s));
            }
            m.insert("target_agent_id".into(), opt(&d.target_agent_id));
            m.insert("target_team_id".into(), opt(&d.target_team_id));
        }
        if let Some(s) = &n.text_summary {
            m.insert("summary".into(), json!(s));
        }
        let pick =
            |from_def: Option<&Value>, key: &str| from_def.cloned().filter(|v| !v.is_null()).or_else(|| slot(n, key));
        for (field, def_value, key) in [
            ("if_json", d.map(|d| &d.if_json), "if"),
            ("then_json", d.map(|d| &d.then_json), "then"),
            ("exceptions_json", d.map(|d| &d.exceptions_json), "exceptions"),
        ] {
            if let Some(v) = pick(def_value, key) {
                m.insert(field.into(), v);
            }
        }
        if let Some(d) = d {
            m.insert("stats".into(), json!({"positive": d.positive_count, "negative": d.negative_count}));
        }
        m.insert("commit_id".into(), json!(n.commit_id));
        items.push(Value::Object(m));
        cite(n, &mut citations);
    }

    // The text's lines.
    let mut lines: Vec<Line> = Vec::new();
    let mut add = |section: Section, text: String, importance: i64| {
        let bias = pol.bias[SECTIONS.iter().position(|(s, _, _)| *s == section).unwrap_or(0)];
        lines.push(Line { section, text, importance: importance + bias, active: true });
    };
    let label_summary = |n: &StoredNode| {
        let label = n.title.clone().unwrap_or_else(|| n.id.clone());
        let summary = n.text_summary.as_ref().filter(|s| !s.is_empty()).map(|s| format!(": {s}")).unwrap_or_default();
        format!("{label}{summary}")
    };
    for n in &topics {
        if is_compression_concept(n) {
            let covers = n.slots.get("source_event_count").and_then(Value::as_f64).unwrap_or(0.0);
            add(
                Section::Topics,
                format!("- {} (node:{}, compression, covers={})", label_summary(n), n.id, js_number(covers)),
                10,
            );
            let max = if compact { pol.max_topic_evidence_lines } else { 3 };
            let refs = n.slots.get("citations").and_then(Value::as_array).cloned().unwrap_or_default();
            for r in refs.iter().take(max) {
                if let Some(id) = r.get("node_id").and_then(Value::as_str) {
                    add(Section::Topics, format!("  evidence_node={id}"), 90);
                }
            }
        } else {
            add(Section::Topics, format!("- {} (node:{})", label_summary(n), n.id), 10);
        }
    }
    for n in &entities {
        add(Section::Entities, format!("- {} (node:{})", label_summary(n), n.id), 40);
    }
    for n in &events {
        let summary = n.text_summary.clone().unwrap_or_else(|| "(no summary)".into());
        let mut refs = Vec::new();
        if let Some(r) = n.raw_ref.as_ref().filter(|r| !r.is_empty()) {
            refs.push(format!("raw_ref={r}"));
        }
        if let Some(r) = n.evidence_ref.as_ref().filter(|r| !r.is_empty()) {
            refs.push(format!("evidence_ref={r}"));
        }
        let refs = if refs.is_empty() { String::new() } else { format!(", {}", refs.join(", ")) };
        add(Section::Events, format!("- {summary} (node:{}{refs})", n.id), 70);
    }
    for n in &rules {
        let d = rule_defs.get(&n.id);
        let state = d.map_or("unknown", |d| d.state.as_str());
        let truthy = |v: &Value| !matches!(v, Value::Null | Value::Bool(false)) && v != &json!("") && v != &json!(0);
        let ifj = d.map(|d| d.if_json.clone()).filter(|v| !v.is_null()).or_else(|| slot(n, "if")).filter(truthy);
        let thenj = d.map(|d| d.then_json.clone()).filter(|v| !v.is_null()).or_else(|| slot(n, "then")).filter(truthy);
        let stats = d.map(|d| format!(" pos={} neg={}", d.positive_count, d.negative_count)).unwrap_or_default();
        let scope = d.and_then(|d| d.rule_scope.as_ref()).map(|s| format!(" scope={s}")).unwrap_or_default();
        let target = match d {
            Some(d) if d.rule_scope.as_deref() == Some("agent") && d.target_agent_id.is_some() => {
                format!(" target_agent={}", d.target_agent_id.as_deref().unwrap_or_default())
            }
            Some(d) if d.rule_scope.as_deref() == Some("team") && d.target_team_id.is_some() => {
                format!(" target_team={}", d.target_team_id.as_deref().unwrap_or_default())
            }
            _ => String::new(),
        };
        let summary = n.text_summary.clone().unwrap_or_else(|| "(none)".into());
        add(Section::Rules, format!("- state={state}{scope}{target}{stats} summary={summary} (node:{})", n.id), 20);
        if pol.include_rule_json_lines {
            if let Some(v) = ifj {
                add(Section::Rules, format!("  if={v}"), 80);
            }
            if let Some(v) = thenj {
                add(Section::Rules, format!("  then={v}"), 80);
            }
        }
    }

    // Compaction: drop the least important lines until the text fits.
    let mut text = render(&lines);
    let (before_chars, before_tokens) = (chars(&text), estimate_tokens(&text));
    let mut dropped = [0usize; 4];
    let mut dropped_lines = 0;
    if let Some(budget) = char_budget.map(|b| b as usize)
        && chars(&text) > budget
    {
        let mut order: Vec<usize> = (0..lines.len()).collect();
        // Stable: equally important lines go in text order.
        order.sort_by(|a, b| lines[*b].importance.cmp(&lines[*a].importance));
        let mut active = lines.len();
        for i in order {
            if chars(&text) <= budget || active <= 1 {
                break;
            }
            lines[i].active = false;
            active -= 1;
            dropped_lines += 1;
            dropped[SECTIONS.iter().position(|(s, _, _)| *s == lines[i].section).unwrap_or(0)] += 1;
            text = render(&lines);
        }
    }
    let after_chars = chars(&text);
    let compaction = json!({
        "profile": if profile == CompactionProfile::Aggressive { "aggressive" } else { "balanced" },
        "token_budget": token_budget,
        "char_budget": char_budget,
        "applied": after_chars < before_chars,
        "before_chars": before_chars,
        "after_chars": after_chars,
        "before_est_tokens": before_tokens,
        "after_est_tokens": estimate_tokens(&text),
        "dropped_lines": dropped_lines,
        "dropped_by_section": {
            "topics": dropped[0], "entities": dropped[1], "events": dropped[2], "rules": dropped[3],
        },
    });
    BuiltContext { text, items, citations, compaction }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, t: &str) -> StoredNode {
        StoredNode {
            id: id.into(),
            scope_key: "s".into(),
            client_id: None,
            node_type: t.into(),
            tier: "hot".into(),
            title: None,
            text_summary: None,
            slots: Map::new(),
            raw_ref: None,
            evidence_ref: None,
            embedding_sha256: None,
            salience: 0.5,
            importance: 0.5,
            confidence: 0.5,
            memory_lane: "shared".into(),
            producer_agent_id: None,
            owner_agent_id: None,
            owner_team_id: None,
            created_at: String::new(),
            commit_id: format!("c-{id}"),
            embedding_status: "ready".into(),
            embedding_model: None,
            updated_at: String::new(),
            last_activated: None,
        }
    }

    fn with(mut n: StoredNode, f: impl FnOnce(&mut StoredNode)) -> StoredNode {
        f(&mut n);
        n
    }

    fn fixture() -> Vec<StoredNode> {
        vec![
            with(node("e1", "event"), |n| {
                n.text_summary = Some("deploy failed".into());
                n.raw_ref = Some("log://1".into());
            }),
            with(node("t1", "topic"), |n| {
                n.title = Some("Deploys".into());
                n.text_summary = Some("deploy issues".into());
            }),
            with(node("draft", "topic"), |n| {
                n.slots.insert("topic_state".into(), json!("draft"));
            }),
            with(node("a", "entity"), |n| n.title = Some("Alice".into())),
            node("e2", "event"),
            with(node("r1", "rule"), |n| n.text_summary = Some("prefer json".into())),
        ]
    }

    fn defs() -> HashMap<String, RuleDef> {
        let d = RuleDef {
            state: "active".into(),
            rule_scope: Some("agent".into()),
            target_agent_id: Some("bot".into()),
            target_team_id: None,
            if_json: json!({"intent": "json"}),
            then_json: json!({"output": {"format": "json"}}),
            exceptions_json: json!([]),
            positive_count: 2,
            negative_count: 1,
        };
        [("r1".to_string(), d)].into_iter().collect()
    }

    #[test]
    fn renders_sections_items_and_citations() {
        let nodes = fixture();
        let refs: Vec<&StoredNode> = nodes.iter().collect();
        let c = build(&refs, &defs(), &ContextOptions::default(), None);
        assert_eq!(
            c.text,
            "# Topics / Concepts\n- Deploys: deploy issues (node:t1)\n\n# Entities\n- Alice (node:a)\n\n\
             # Supporting Events / Evidence\n- deploy failed (node:e1, raw_ref=log://1)\n- (no summary) (node:e2)\n\n\
             # Applicable Rules (Shadow/Active)\n- state=active scope=agent target_agent=bot pos=2 neg=1 summary=prefer json (node:r1)\n\
             \x20 if={\"intent\":\"json\"}\n  then={\"output\":{\"format\":\"json\"}}"
        );
        let kinds: Vec<&str> = c.items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["topic", "entity", "event", "event", "rule"]);
        assert_eq!(c.items[2]["raw_ref"], "log://1");
        assert_eq!(c.items[4]["stats"], json!({"positive": 2, "negative": 1}));
        let cited: Vec<&str> = c.citations.iter().map(|i| i["node_id"].as_str().unwrap()).collect();
        assert_eq!(cited, ["t1", "a", "e1", "e2", "r1"]);
        assert_eq!(c.compaction["applied"], false);
        // With a URI base, items and citations carry aionis:// URIs.
        let c = build(&refs, &defs(), &ContextOptions::default(), Some(("t", "s")));
        assert_eq!(c.citations[0]["uri"], "aionis://t/s/topic/t1");
    }

    #[test]
    fn rollups_replace_the_events_they_cite() {
        let rollup = with(node("c1", "concept"), |n| {
            n.title = Some("Summary".into());
            n.slots.insert("summary_kind".into(), json!("compression_rollup"));
            n.slots.insert("source_event_count".into(), json!(2));
            n.slots.insert("citations".into(), json!([{"node_id": "e1"}, {"node_id": "e2"}]));
        });
        let e1 = with(node("e1", "event"), |n| n.text_summary = Some("one".into()));
        let e3 = with(node("e3", "event"), |n| n.text_summary = Some("three".into()));
        let refs = vec![&rollup, &e1, &e3];
        let c = build(&refs, &HashMap::new(), &ContextOptions::default(), None);
        assert_eq!(
            c.text,
            "# Topics / Concepts\n- Summary (node:c1, compression, covers=2)\n  evidence_node=e1\n  evidence_node=e2\n\n\
             # Supporting Events / Evidence\n- three (node:e3)"
        );
    }

    #[test]
    fn compaction_drops_low_priority_lines_first_and_keeps_the_last() {
        let nodes = fixture();
        let refs: Vec<&StoredNode> = nodes.iter().collect();
        let opts = ContextOptions { char_budget: Some(100), ..Default::default() };
        let c = build(&refs, &defs(), &opts, None);
        assert_eq!(c.compaction["char_budget"], 160, "budgets have a floor of 160");
        assert!(c.text.chars().count() <= 160, "{}", c.text);
        // Rule json (85) and event lines (110) go before entities (50) and topics (10).
        assert!(!c.text.contains("if=") && c.text.contains("Deploys"), "{}", c.text);
        assert_eq!(c.compaction["applied"], true);
        let by = &c.compaction["dropped_by_section"];
        assert_eq!(by["events"], 2);
        assert_eq!(
            c.compaction["dropped_lines"].as_u64().unwrap(),
            by.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>()
        );
        // Items are not cut by line dropping.
        assert_eq!(c.items.len(), 5);
        // A tiny budget keeps exactly one line.
        let c = build(&refs, &defs(), &ContextOptions { token_budget: Some(1), ..Default::default() }, None);
        assert_eq!(c.compaction["char_budget"], 160);
        assert_eq!(c.text.lines().filter(|l| l.starts_with("- ") || l.starts_with("  ")).count(), 1, "{}", c.text);
    }

    #[test]
    fn aggressive_omits_rule_json_and_caps_events() {
        let mut nodes = fixture();
        for i in 0..4 {
            nodes.push(with(node(&format!("x{i}"), "event"), |n| n.text_summary = Some(format!("extra {i}"))));
        }
        let refs: Vec<&StoredNode> = nodes.iter().collect();
        let c = build(
            &refs,
            &defs(),
            &ContextOptions { profile: Some(CompactionProfile::Aggressive), ..Default::default() },
            None,
        );
        assert!(!c.text.contains("if=") && !c.text.contains("then="));
        assert_eq!(c.items.iter().filter(|i| i["kind"] == "event").count(), 2);
        assert_eq!(c.compaction["profile"], "aggressive");
        assert_eq!(c.compaction["char_budget"], Value::Null);
    }

    #[test]
    fn empty_and_draft_only_input_gives_empty_context() {
        let c = build(&[], &HashMap::new(), &ContextOptions::default(), None);
        assert_eq!((c.text.as_str(), c.items.len(), c.citations.len()), ("", 0, 0));
        let d = with(node("d", "topic"), |n| {
            n.slots.insert("topic_state".into(), json!("draft"));
        });
        let c = build(&[&d], &HashMap::new(), &ContextOptions::default(), None);
        assert_eq!(c.text, "");
    }
}
