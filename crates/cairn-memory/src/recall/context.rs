//! The context block of a recall (reference §6.2 step 7): a text an agent
//! can paste into its prompt, the `items` behind it and their `citations`.
//! A port of the reference's `buildContext`.
//!
//! From the ranked nodes (best first, draft topics skipped): up to 4
//! topics/concepts, 6 entities, 10 events/evidence and 6 rules. When a
//! selected concept is a compression rollup (`slots.summary_kind =
//! "compression_rollup"`), up to 24 events are considered, those its
//! `slots.citations[].node_id` already cover are dropped, and 5 remain.
//! The text has one section per kind, separated by a blank line; a section
//! without lines is left out, header included:
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
//! - state=<s|unknown>[ scope=<rs>][ target_agent=..| target_team=..][ pos=P neg=N] summary=<s|(none)> (node:<id>)
//!   if=<json>
//!   then=<json>
//! ```
//!
//! **Compaction.** A budget (`context_char_budget`, at least 160, or
//! `4 × context_token_budget`, at least 160) or the `aggressive` profile
//! turns on compact mode: at most 5 (balanced) / 2 (aggressive) event
//! lines and 2 / 1 `evidence_node` lines per rollup (3 otherwise);
//! aggressive drops rule `if=`/`then=` lines. While the text exceeds the
//! budget, the least important line (importance: topic 10, rule 20,
//! entity 40, event 70, rule json 80, rollup evidence 90, plus a
//! per-section bias) is dropped, ties in text order; the last line always
//! stays. Only `text` shrinks by line dropping.
//!
//! Where the reference's documentation and code disagree, this follows the
//! code:
//! - the compact-mode event cap is applied before `items` and `citations`
//!   are built, so it shrinks them too (the docs say they stay intact);
//! - the rollup's `evidence_node` lines take the first 3 (2 / 1) entries of
//!   `slots.citations` *before* skipping malformed ones, so fewer may show;
//! - `covers=` is JavaScript's `Number(slots.source_event_count ?? 0)`
//!   (a numeric string counts, anything else unparsable prints `NaN`);
//! - a rule without a definition still gets a line (`state=unknown`, no
//!   `pos/neg`) with `if`/`then` taken from `slots.if` / `slots.then`;
//! - lengths and budgets count UTF-16 code units (JavaScript's
//!   `String.length`); tokens are `max(1, ceil(len / 4))`, 0 for "".
//!
//! `if=`/`then=` JSON is rendered as the reference prints a Postgres
//! `jsonb` value: object keys in `jsonb` order (shorter first, then
//! bytewise), array-index keys (`"0"`, `"12"`) hoisted first in numeric
//! order as JavaScript objects do, numbers and strings as `JSON.stringify`.

use crate::node_dto::node_uri;
use crate::stored_rows::StoredNode;
use cairn_core::canonical_json::{JsonStyle, js_number, write_styled};
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

/// Where URIs point: `(tenant_id, scope)` as the client names them. Items
/// and citations carry `uri` only when both are non-blank.
pub type UriBase<'a> = Option<(&'a str, &'a str)>;

/// The smallest character budget.
const MIN_CHAR_BUDGET: i64 = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Topics = 0,
    Entities = 1,
    Events = 2,
    Rules = 3,
}

const SECTIONS: [Section; 4] = [Section::Topics, Section::Entities, Section::Events, Section::Rules];

impl Section {
    fn index(self) -> usize {
        self as usize
    }

    fn title(self) -> &'static str {
        match self {
            Section::Topics => "Topics / Concepts",
            Section::Entities => "Entities",
            Section::Events => "Supporting Events / Evidence",
            Section::Rules => "Applicable Rules (Shadow/Active)",
        }
    }
}

struct Policy {
    bias: [i64; 4],
    max_topic_evidence_lines: usize,
    max_event_lines_compact: usize,
    include_rule_json_lines: bool,
}

impl CompactionProfile {
    fn name(self) -> &'static str {
        match self {
            CompactionProfile::Balanced => "balanced",
            CompactionProfile::Aggressive => "aggressive",
        }
    }

    fn policy(self) -> Policy {
        match self {
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
}

/// Line importances before the section bias (higher = dropped sooner).
const IMP_TOPIC: i64 = 10;
const IMP_ROLLUP_EVIDENCE: i64 = 90;
const IMP_ENTITY: i64 = 40;
const IMP_EVENT: i64 = 70;
const IMP_RULE: i64 = 20;
const IMP_RULE_JSON: i64 = 80;

struct Line {
    section: Section,
    text: String,
    importance: i64,
    active: bool,
}

/// The nodes the context is made of, per section.
struct Selection<'a> {
    topics: Vec<&'a StoredNode>,
    entities: Vec<&'a StoredNode>,
    events: Vec<&'a StoredNode>,
    rules: Vec<&'a StoredNode>,
}

/// Builds the context from the ranked nodes (best first).
pub fn build(
    ranked: &[&StoredNode],
    rule_defs: &HashMap<String, RuleDef>,
    opts: &ContextOptions,
    uri_base: UriBase,
) -> BuiltContext {
    let profile = opts.profile.unwrap_or(CompactionProfile::Balanced);
    let pol = profile.policy();
    let (token_budget, char_budget) = budgets(opts);
    let compact = char_budget.is_some() || profile == CompactionProfile::Aggressive;

    let sel = select(ranked, compact.then_some(pol.max_event_lines_compact));
    let uri_base = uri_base.map(|(t, s)| (t.trim(), s.trim())).filter(|(t, s)| !t.is_empty() && !s.is_empty());
    let (items, citations) = items_and_citations(&sel, rule_defs, uri_base);
    let mut lines = text_lines(&sel, rule_defs, &pol, compact);

    let before = render(&lines);
    let (text, dropped) = match char_budget {
        Some(budget) => compact_to_budget(&mut lines, usize::try_from(budget).unwrap_or(usize::MAX), before.clone()),
        None => (before.clone(), [0; 4]),
    };
    let compaction = diagnostics(profile, token_budget, char_budget, &before, &text, dropped);
    BuiltContext { text, items, citations, compaction }
}

/// `(token_budget, char_budget)` as the reference resolves them.
fn budgets(opts: &ContextOptions) -> (Option<i64>, Option<i64>) {
    let token_budget = opts.token_budget.filter(|t| *t > 0);
    let char_budget = match opts.char_budget.filter(|c| *c > 0) {
        Some(c) => Some(c.max(MIN_CHAR_BUDGET)),
        None => token_budget.map(|t| t.saturating_mul(4).max(MIN_CHAR_BUDGET)),
    };
    (token_budget, char_budget)
}

fn is_compression_concept(n: &StoredNode) -> bool {
    n.node_type == "concept" && n.slots.get("summary_kind").and_then(Value::as_str) == Some("compression_rollup")
}

fn pick_top<'a>(ranked: &[&'a StoredNode], types: &[&str], limit: usize) -> Vec<&'a StoredNode> {
    ranked
        .iter()
        .copied()
        .filter(|n| types.contains(&n.node_type.as_str()) && !super::subgraph::is_draft_topic(n))
        .take(limit)
        .collect()
}

/// A rollup's `slots.citations` entries (possibly malformed).
fn rollup_refs(n: &StoredNode) -> &[Value] {
    n.slots.get("citations").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The `node_id` of one `slots.citations` entry, if it has a string one.
fn ref_node_id(r: &Value) -> Option<&str> {
    r.as_object()?.get("node_id")?.as_str()
}

/// Picks each section's nodes; `event_cap` is the compact-mode event cap.
fn select<'a>(ranked: &[&'a StoredNode], event_cap: Option<usize>) -> Selection<'a> {
    let topics = pick_top(ranked, &["topic", "concept"], 4);
    let entities = pick_top(ranked, &["entity"], 6);
    let rollups: Vec<&StoredNode> = topics.iter().copied().filter(|n| is_compression_concept(n)).collect();
    let mut events = if rollups.is_empty() {
        pick_top(ranked, &["event", "evidence"], 10)
    } else {
        let covered: HashSet<&str> = rollups.iter().flat_map(|n| rollup_refs(n)).filter_map(ref_node_id).collect();
        let window = pick_top(ranked, &["event", "evidence"], 24);
        window.into_iter().filter(|n| !covered.contains(n.id.as_str())).take(5).collect()
    };
    if let Some(cap) = event_cap {
        events.truncate(cap);
    }
    let rules = pick_top(ranked, &["rule"], 6);
    Selection { topics, entities, events, rules }
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

/// An item's head: `kind`, `node_id` and, with a URI base, `uri`.
fn item_head(kind: &str, n: &StoredNode, uri_base: UriBase) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    m.insert("node_id".into(), json!(n.id));
    if let Some((tenant, scope)) = uri_base {
        m.insert("uri".into(), json!(node_uri(tenant, scope, &n.node_type, &n.id)));
    }
    m
}

/// A topic, concept or entity item.
fn labelled_item(kind: &str, n: &StoredNode, uri_base: UriBase) -> Value {
    let mut m = item_head(kind, n, uri_base);
    if let Some(t) = &n.title {
        m.insert("title".into(), json!(t));
    }
    if let Some(s) = &n.text_summary {
        m.insert("summary".into(), json!(s));
    }
    m.insert("commit_id".into(), json!(n.commit_id));
    Value::Object(m)
}

fn event_item(n: &StoredNode, uri_base: UriBase) -> Value {
    let mut m = item_head(&n.node_type, n, uri_base);
    if let Some(s) = &n.text_summary {
        m.insert("summary".into(), json!(s));
    }
    m.insert("raw_ref".into(), opt_str(&n.raw_ref));
    m.insert("evidence_ref".into(), opt_str(&n.evidence_ref));
    m.insert("commit_id".into(), json!(n.commit_id));
    Value::Object(m)
}

/// `def_value ?? slots[key]`, absent when both are null or missing.
fn rule_json(def_value: Option<&Value>, n: &StoredNode, key: &str) -> Option<Value> {
    def_value.filter(|v| !v.is_null()).or_else(|| n.slots.get(key).filter(|v| !v.is_null())).cloned()
}

fn rule_item(n: &StoredNode, d: Option<&RuleDef>, uri_base: UriBase) -> Value {
    let mut m = item_head("rule", n, uri_base);
    if let Some(d) = d {
        m.insert("state".into(), json!(d.state));
        m.insert("rule_scope".into(), opt_str(&d.rule_scope));
        m.insert("target_agent_id".into(), opt_str(&d.target_agent_id));
        m.insert("target_team_id".into(), opt_str(&d.target_team_id));
    }
    if let Some(s) = &n.text_summary {
        m.insert("summary".into(), json!(s));
    }
    for (field, def_value, key) in [
        ("if_json", d.map(|d| &d.if_json), "if"),
        ("then_json", d.map(|d| &d.then_json), "then"),
        ("exceptions_json", d.map(|d| &d.exceptions_json), "exceptions"),
    ] {
        if let Some(v) = rule_json(def_value, n, key) {
            m.insert(field.into(), v);
        }
    }
    if let Some(d) = d {
        m.insert("stats".into(), json!({"positive": d.positive_count, "negative": d.negative_count}));
    }
    m.insert("commit_id".into(), json!(n.commit_id));
    Value::Object(m)
}

fn citation(n: &StoredNode, uri_base: UriBase) -> Value {
    let mut c = Map::new();
    c.insert("node_id".into(), json!(n.id));
    if let Some((tenant, scope)) = uri_base {
        c.insert("uri".into(), json!(node_uri(tenant, scope, &n.node_type, &n.id)));
    }
    c.insert("commit_id".into(), json!(n.commit_id));
    c.insert("raw_ref".into(), opt_str(&n.raw_ref));
    c.insert("evidence_ref".into(), opt_str(&n.evidence_ref));
    Value::Object(c)
}

/// The items in section order, and one citation per distinct node.
fn items_and_citations(
    sel: &Selection,
    rule_defs: &HashMap<String, RuleDef>,
    uri_base: UriBase,
) -> (Vec<Value>, Vec<Value>) {
    let mut items = Vec::new();
    let mut picked: Vec<&StoredNode> = Vec::new();
    for n in &sel.topics {
        items.push(labelled_item(&n.node_type, n, uri_base));
        picked.push(n);
    }
    for n in &sel.entities {
        items.push(labelled_item("entity", n, uri_base));
        picked.push(n);
    }
    for n in &sel.events {
        items.push(event_item(n, uri_base));
        picked.push(n);
    }
    for n in &sel.rules {
        items.push(rule_item(n, rule_defs.get(&n.id), uri_base));
        picked.push(n);
    }
    let mut seen = HashSet::new();
    let citations = picked.into_iter().filter(|n| seen.insert(n.id.as_str())).map(|n| citation(n, uri_base)).collect();
    (items, citations)
}

/// `<title|id>[: <summary>]`.
fn label(n: &StoredNode) -> String {
    let label = n.title.as_deref().unwrap_or(&n.id);
    match n.text_summary.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => format!("{label}: {s}"),
        None => label.to_string(),
    }
}

/// A topic/concept's lines with their base importances.
fn topic_lines(n: &StoredNode, max_evidence: usize) -> Vec<(String, i64)> {
    if !is_compression_concept(n) {
        return vec![(format!("- {} (node:{})", label(n), n.id), IMP_TOPIC)];
    }
    let covers = js_to_number(n.slots.get("source_event_count").unwrap_or(&Value::Null));
    let head = format!("- {} (node:{}, compression, covers={})", label(n), n.id, js_number_text(covers));
    let mut out = vec![(head, IMP_TOPIC)];
    let evidence = rollup_refs(n).iter().take(max_evidence).filter_map(ref_node_id);
    out.extend(evidence.map(|id| (format!("  evidence_node={id}"), IMP_ROLLUP_EVIDENCE)));
    out
}

fn event_line(n: &StoredNode) -> String {
    let summary = n.text_summary.as_deref().unwrap_or("(no summary)");
    let mut refs = Vec::new();
    if let Some(r) = n.raw_ref.as_deref().filter(|r| !r.is_empty()) {
        refs.push(format!("raw_ref={r}"));
    }
    if let Some(r) = n.evidence_ref.as_deref().filter(|r| !r.is_empty()) {
        refs.push(format!("evidence_ref={r}"));
    }
    let refs = if refs.is_empty() { String::new() } else { format!(", {}", refs.join(", ")) };
    format!("- {summary} (node:{}{refs})", n.id)
}

/// ` scope=..[ target_agent=..| target_team=..][ pos=P neg=N]` of a rule line.
fn rule_qualifiers(d: &RuleDef) -> String {
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let scope = non_empty(&d.rule_scope);
    let mut out = String::new();
    if let Some(s) = &scope {
        out.push_str(&format!(" scope={s}"));
    }
    match (scope.as_deref(), non_empty(&d.target_agent_id), non_empty(&d.target_team_id)) {
        (Some("agent"), Some(a), _) => out.push_str(&format!(" target_agent={a}")),
        (Some("team"), _, Some(t)) => out.push_str(&format!(" target_team={t}")),
        _ => {}
    }
    out.push_str(&format!(" pos={} neg={}", d.positive_count, d.negative_count));
    out
}

/// A rule's lines with their base importances.
fn rule_lines(n: &StoredNode, d: Option<&RuleDef>, include_json: bool) -> Vec<(String, i64)> {
    let state = d.map_or("unknown", |d| d.state.as_str());
    let qualifiers = d.map(rule_qualifiers).unwrap_or_default();
    let summary = n.text_summary.as_deref().unwrap_or("(none)");
    let mut out = vec![(format!("- state={state}{qualifiers} summary={summary} (node:{})", n.id), IMP_RULE)];
    if include_json {
        for (name, def_value, key) in [("if", d.map(|d| &d.if_json), "if"), ("then", d.map(|d| &d.then_json), "then")] {
            if let Some(v) = rule_json(def_value, n, key).filter(js_truthy) {
                out.push((format!("  {name}={}", js_stringify(&v)), IMP_RULE_JSON));
            }
        }
    }
    out
}

/// All text lines, in text order, importances biased per section.
fn text_lines(sel: &Selection, rule_defs: &HashMap<String, RuleDef>, pol: &Policy, compact: bool) -> Vec<Line> {
    let max_evidence = if compact { pol.max_topic_evidence_lines } else { 3 };
    let mut raw: Vec<(Section, String, i64)> = Vec::new();
    for n in &sel.topics {
        raw.extend(topic_lines(n, max_evidence).into_iter().map(|(t, i)| (Section::Topics, t, i)));
    }
    for n in &sel.entities {
        raw.push((Section::Entities, format!("- {} (node:{})", label(n), n.id), IMP_ENTITY));
    }
    for n in &sel.events {
        raw.push((Section::Events, event_line(n), IMP_EVENT));
    }
    for n in &sel.rules {
        let lines = rule_lines(n, rule_defs.get(&n.id), pol.include_rule_json_lines);
        raw.extend(lines.into_iter().map(|(t, i)| (Section::Rules, t, i)));
    }
    raw.into_iter()
        .map(|(section, text, importance)| Line {
            section,
            text,
            importance: importance + pol.bias[section.index()],
            active: true,
        })
        .collect()
}

/// The text of the active lines: `# <title>` per non-empty section.
fn render(lines: &[Line]) -> String {
    let mut out = String::new();
    for section in SECTIONS {
        let mut active = lines.iter().filter(|l| l.section == section && l.active).peekable();
        if active.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str("# ");
        out.push_str(section.title());
        for l in active {
            out.push('\n');
            out.push_str(&l.text);
        }
    }
    out
}

/// Drops the least important lines (ties in text order) until the text
/// fits `budget`, keeping at least one line. Returns the text and the
/// dropped lines per section.
fn compact_to_budget(lines: &mut [Line], budget: usize, mut text: String) -> (String, [usize; 4]) {
    let mut dropped = [0usize; 4];
    if utf16_len(&text) <= budget {
        return (text, dropped);
    }
    let mut order: Vec<usize> = (0..lines.len()).collect();
    // Stable, like the reference's Array.prototype.sort.
    order.sort_by(|a, b| lines[*b].importance.cmp(&lines[*a].importance));
    let mut active = lines.len();
    for i in order {
        if utf16_len(&text) <= budget || active <= 1 {
            break;
        }
        lines[i].active = false;
        active -= 1;
        dropped[lines[i].section.index()] += 1;
        text = render(lines);
    }
    (text, dropped)
}

fn diagnostics(
    profile: CompactionProfile,
    token_budget: Option<i64>,
    char_budget: Option<i64>,
    before: &str,
    after: &str,
    dropped: [usize; 4],
) -> Value {
    let (before_chars, after_chars) = (utf16_len(before), utf16_len(after));
    json!({
        "profile": profile.name(),
        "token_budget": token_budget,
        "char_budget": char_budget,
        "applied": after_chars < before_chars,
        "before_chars": before_chars,
        "after_chars": after_chars,
        "before_est_tokens": estimate_tokens(before),
        "after_est_tokens": estimate_tokens(after),
        "dropped_lines": dropped.iter().sum::<usize>(),
        "dropped_by_section": {
            "topics": dropped[0], "entities": dropped[1], "events": dropped[2], "rules": dropped[3],
        },
    })
}

// --- JavaScript semantics the reference relies on -------------------------

/// JavaScript's `String.length`: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// The reference's token estimate: `max(1, ceil(len / 4))`, 0 for "".
pub fn estimate_tokens(text: &str) -> usize {
    utf16_len(text).div_ceil(4)
}

/// JavaScript truthiness of a JSON value.
fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(v)` for a JSON value.
fn js_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number_text(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        // Array.prototype.join writes null elements as "".
        Value::Array(a) => {
            a.iter().map(|e| if e.is_null() { String::new() } else { js_to_string(e) }).collect::<Vec<_>>().join(",")
        }
        Value::Object(_) => "[object Object]".into(),
    }
}

/// JavaScript's `Number(v ?? 0)` for a JSON value.
fn js_to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => js_string_to_number(s),
        Value::Array(_) => js_string_to_number(&js_to_string(v)),
        Value::Object(_) => f64::NAN,
    }
}

fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// JavaScript's `Number(string)` (StringToNumber).
fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = t.get(..2).filter(|p| p.eq_ignore_ascii_case(prefix)).and(t.get(2..)) {
            return if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
                digits
                    .chars()
                    .filter_map(|c| c.to_digit(radix))
                    .fold(0.0, |acc, d| acc * f64::from(radix) + f64::from(d))
            } else {
                f64::NAN
            };
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    if is_decimal_literal(unsigned) { t.parse().unwrap_or(f64::NAN) } else { f64::NAN }
}

/// `digits[.digits][e[+-]digits]` or `.digits[e..]`, at least one digit in
/// the mantissa (what JavaScript accepts; Rust's parser also takes "inf").
fn is_decimal_literal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A number as a JavaScript template literal prints it.
fn js_number_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        js_number(x)
    }
}

/// `JSON.stringify` of a value read from a Postgres `jsonb` column.
fn js_stringify(v: &Value) -> String {
    let mut out = String::new();
    write_styled(&mut out, v, &JsonbAsJs);
    out
}

/// How the reference prints a `jsonb` value: keys in `jsonb` order as a
/// JavaScript object enumerates them, every number as a JavaScript double.
struct JsonbAsJs;

impl JsonStyle for JsonbAsJs {
    fn keys<'a>(&self, map: &'a Map<String, Value>) -> Vec<&'a String> {
        js_key_order(map)
    }
    fn number(&self, out: &mut String, n: &serde_json::Number) {
        // Non-finite cannot occur in JSON; js_number writes it as null.
        out.push_str(&js_number(n.as_f64().unwrap_or(f64::NAN)));
    }
}

/// Keys as `jsonb` stores them (length, then bytes), then reordered as a
/// JavaScript object enumerates them (array indices first, ascending).
fn js_key_order(m: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes())));
    let (mut indices, rest): (Vec<&String>, Vec<&String>) = keys.into_iter().partition(|k| array_index(k).is_some());
    indices.sort_by_key(|k| array_index(k));
    indices.extend(rest);
    indices
}

/// The key as a JavaScript array index (canonical integer below 2³²−1).
fn array_index(k: &str) -> Option<u32> {
    let canonical = k == "0" || (!k.starts_with('0') && !k.is_empty() && k.len() <= 10);
    if !canonical || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    k.parse::<u64>().ok().filter(|v| *v < u64::from(u32::MAX)).and_then(|v| u32::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stored_rows::fixtures::node;

    fn with(mut n: StoredNode, f: impl FnOnce(&mut StoredNode)) -> StoredNode {
        f(&mut n);
        n
    }

    fn event(id: &str, summary: &str) -> StoredNode {
        with(node(id, "event"), |n| n.text_summary = Some(summary.into()))
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
                n.title = Some("Draft".into());
                n.slots.insert("topic_state".into(), json!("draft"));
            }),
            with(node("a", "entity"), |n| n.title = Some("Alice".into())),
            node("e2", "event"),
            with(node("r1", "rule"), |n| n.text_summary = Some("prefer json".into())),
        ]
    }

    fn def() -> RuleDef {
        RuleDef {
            state: "active".into(),
            rule_scope: Some("agent".into()),
            target_agent_id: Some("bot".into()),
            target_team_id: None,
            if_json: json!({"intent": "json"}),
            then_json: json!({"output": {"format": "json"}}),
            exceptions_json: json!([]),
            positive_count: 2,
            negative_count: 1,
        }
    }

    fn defs() -> HashMap<String, RuleDef> {
        [("r1".to_string(), def())].into_iter().collect()
    }

    fn run(nodes: &[StoredNode], defs: &HashMap<String, RuleDef>, opts: ContextOptions) -> BuiltContext {
        let refs: Vec<&StoredNode> = nodes.iter().collect();
        build(&refs, defs, &opts, None)
    }

    fn ids(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["node_id"].as_str().unwrap_or("?")).collect()
    }

    const FULL_TEXT: &str = "# Topics / Concepts\n- Deploys: deploy issues (node:t1)\n\n\
        # Entities\n- Alice (node:a)\n\n\
        # Supporting Events / Evidence\n- deploy failed (node:e1, raw_ref=log://1)\n- (no summary) (node:e2)\n\n\
        # Applicable Rules (Shadow/Active)\n\
        - state=active scope=agent target_agent=bot pos=2 neg=1 summary=prefer json (node:r1)\n\
        \x20 if={\"intent\":\"json\"}\n  then={\"output\":{\"format\":\"json\"}}";

    #[test]
    fn renders_sections_items_and_citations() {
        let c = run(&fixture(), &defs(), ContextOptions::default());
        assert_eq!(c.text, FULL_TEXT);
        assert_eq!(ids(&c.items), ["t1", "a", "e1", "e2", "r1"], "draft topic skipped, section order");
        assert_eq!(
            c.items[0],
            json!({"kind": "topic", "node_id": "t1", "title": "Deploys", "summary": "deploy issues", "commit_id": "c-t1"})
        );
        assert_eq!(
            c.items[3],
            json!({"kind": "event", "node_id": "e2", "raw_ref": null, "evidence_ref": null, "commit_id": "c-e2"})
        );
        assert_eq!(
            c.items[4],
            json!({"kind": "rule", "node_id": "r1", "state": "active", "rule_scope": "agent",
                   "target_agent_id": "bot", "target_team_id": null, "summary": "prefer json",
                   "if_json": {"intent": "json"}, "then_json": {"output": {"format": "json"}},
                   "exceptions_json": [], "stats": {"positive": 2, "negative": 1}, "commit_id": "c-r1"})
        );
        assert_eq!(ids(&c.citations), ["t1", "a", "e1", "e2", "r1"]);
        assert_eq!(
            c.citations[2],
            json!({"node_id": "e1", "commit_id": "c-e1", "raw_ref": "log://1", "evidence_ref": null})
        );
        let n = FULL_TEXT.len();
        assert_eq!(
            c.compaction,
            json!({"profile": "balanced", "token_budget": null, "char_budget": null, "applied": false,
                   "before_chars": n, "after_chars": n, "before_est_tokens": n.div_ceil(4),
                   "after_est_tokens": n.div_ceil(4), "dropped_lines": 0,
                   "dropped_by_section": {"topics": 0, "entities": 0, "events": 0, "rules": 0}})
        );
    }

    #[test]
    fn uris_need_a_non_blank_tenant_and_scope() {
        let nodes = fixture();
        let refs: Vec<&StoredNode> = nodes.iter().collect();
        let c = build(&refs, &defs(), &ContextOptions::default(), Some((" t ", "s")));
        assert_eq!(c.citations[0]["uri"], "aionis://t/s/topic/t1");
        assert_eq!(c.items[1]["uri"], "aionis://t/s/entity/a");
        let c = build(&refs, &defs(), &ContextOptions::default(), Some(("t", " ")));
        assert!(c.items.iter().chain(&c.citations).all(|v| v.get("uri").is_none()));
    }

    fn rollup(citations: Value) -> StoredNode {
        with(node("c1", "concept"), |n| {
            n.title = Some("Summary".into());
            n.text_summary = Some("two deploys".into());
            n.slots.insert("summary_kind".into(), json!("compression_rollup"));
            n.slots.insert("source_event_count".into(), json!(4));
            n.slots.insert("citations".into(), citations);
        })
    }

    #[test]
    fn rollups_replace_the_events_they_cite() {
        let c1 = rollup(json!([{"node_id": "e1"}, {"node_id": "e2"}, {"node_id": "e3"}, {"node_id": "e4"}]));
        let mut nodes = vec![c1];
        nodes.extend((1..=12).map(|i| event(&format!("e{i}"), &format!("event {i}"))));
        let c = run(&nodes, &HashMap::new(), ContextOptions::default());
        assert_eq!(
            c.text,
            "# Topics / Concepts\n- Summary: two deploys (node:c1, compression, covers=4)\n\
             \x20 evidence_node=e1\n  evidence_node=e2\n  evidence_node=e3\n\n\
             # Supporting Events / Evidence\n- event 5 (node:e5)\n- event 6 (node:e6)\n- event 7 (node:e7)\n\
             - event 8 (node:e8)\n- event 9 (node:e9)"
        );
        assert_eq!(ids(&c.items), ["c1", "e5", "e6", "e7", "e8", "e9"]);
        assert_eq!(c.items[0]["kind"], "concept");
        assert_eq!(ids(&c.citations), ["c1", "e5", "e6", "e7", "e8", "e9"]);
    }

    #[test]
    fn rollup_window_is_24_events_and_evidence_lines_shrink_in_compact_mode() {
        // All 24 events in the window are cited: none remain, though e25 exists.
        let cited: Vec<Value> = (1..=24).map(|i| json!({"node_id": format!("e{i}")})).collect();
        let mut nodes = vec![rollup(Value::Array(cited))];
        nodes.extend((1..=25).map(|i| event(&format!("e{i}"), "x")));
        let c = run(&nodes, &HashMap::new(), ContextOptions::default());
        assert_eq!(ids(&c.items), ["c1"]);
        let c = run(&nodes, &HashMap::new(), ContextOptions { char_budget: Some(10_000), ..Default::default() });
        assert_eq!(c.text.matches("evidence_node=").count(), 2, "balanced compact: 2");
        let aggressive = ContextOptions { profile: Some(CompactionProfile::Aggressive), ..Default::default() };
        let c = run(&nodes, &HashMap::new(), aggressive);
        assert_eq!(c.text.matches("evidence_node=").count(), 1, "aggressive: 1");
    }

    #[test]
    fn covers_follows_javascript_number() {
        let cases = [(json!("7"), "7"), (json!(" 0x10 "), "16"), (json!("abc"), "NaN"), (json!(2.5), "2.5")];
        for (value, shown) in cases {
            let n = with(rollup(json!([null, 5, {"node_id": "e1"}])), |n| {
                n.slots.insert("source_event_count".into(), value.clone());
            });
            let c = run(&[n], &HashMap::new(), ContextOptions::default());
            // Malformed citations use up the 3 slots before being skipped.
            assert_eq!(
                c.text,
                format!(
                    "# Topics / Concepts\n- Summary: two deploys (node:c1, compression, covers={shown})\n  evidence_node=e1"
                )
            );
        }
        let n = with(rollup(json!([])), |n| {
            n.slots.remove("source_event_count");
        });
        let c = run(&[n], &HashMap::new(), ContextOptions::default());
        assert!(c.text.ends_with("covers=0)"), "{}", c.text);
    }

    #[test]
    fn compaction_drops_low_priority_lines_first_and_keeps_the_last() {
        let opts = ContextOptions { char_budget: Some(210), ..Default::default() };
        let c = run(&fixture(), &defs(), opts);
        // Balanced: event 110, rule json 85, entity 50, rule 25, topic 10.
        // Dropping both events (and their header) and both json lines fits.
        assert_eq!(
            c.text,
            "# Topics / Concepts\n- Deploys: deploy issues (node:t1)\n\n# Entities\n- Alice (node:a)\n\n\
             # Applicable Rules (Shadow/Active)\n\
             - state=active scope=agent target_agent=bot pos=2 neg=1 summary=prefer json (node:r1)"
        );
        assert_eq!(c.text.len(), 205);
        assert_eq!(c.compaction["char_budget"], 210);
        assert_eq!(c.compaction["token_budget"], Value::Null);
        assert_eq!(c.compaction["applied"], true);
        assert_eq!(c.compaction["before_chars"], FULL_TEXT.len());
        assert_eq!(c.compaction["after_chars"], c.text.len());
        assert_eq!(c.compaction["after_est_tokens"], c.text.len().div_ceil(4));
        assert_eq!(c.compaction["dropped_lines"], 4);
        assert_eq!(c.compaction["dropped_by_section"], json!({"topics": 0, "entities": 0, "events": 2, "rules": 2}));
        // Line dropping leaves items and citations alone.
        assert_eq!(ids(&c.items), ["t1", "a", "e1", "e2", "r1"]);
        assert_eq!(c.citations.len(), 5);
        // Budgets have a floor of 160: then the entity and the rule go too.
        let c = run(&fixture(), &defs(), ContextOptions { char_budget: Some(100), ..Default::default() });
        assert_eq!(c.compaction["char_budget"], 160);
        assert_eq!(c.text, "# Topics / Concepts\n- Deploys: deploy issues (node:t1)");
        assert_eq!(c.compaction["dropped_by_section"], json!({"topics": 0, "entities": 1, "events": 2, "rules": 3}));
        assert_eq!(c.compaction["dropped_lines"], 6);
    }

    #[test]
    fn a_budget_too_small_for_any_line_keeps_the_last_one() {
        let long = "x".repeat(300);
        let nodes = vec![
            with(node("t1", "topic"), |n| n.text_summary = Some(long.clone())),
            with(node("a", "entity"), |n| n.text_summary = Some(long.clone())),
        ];
        let opts = ContextOptions { token_budget: Some(1), ..Default::default() };
        let c = run(&nodes, &HashMap::new(), opts);
        // The entity (50) goes first; the topic is the last line and stays over budget.
        assert_eq!(c.text, format!("# Topics / Concepts\n- t1: {long} (node:t1)"));
        assert_eq!(c.compaction["token_budget"], 1);
        assert_eq!(c.compaction["char_budget"], 160);
        assert_eq!(c.compaction["dropped_by_section"], json!({"topics": 0, "entities": 1, "events": 0, "rules": 0}));
    }

    #[test]
    fn budgets_cap_events_in_items_too() {
        let mut nodes = fixture();
        nodes.extend((3..=9).map(|i| event(&format!("e{i}"), "more")));
        let c = run(&nodes, &defs(), ContextOptions::default());
        assert_eq!(c.items.iter().filter(|i| i["kind"] == "event").count(), 9);
        let c = run(&nodes, &defs(), ContextOptions { token_budget: Some(10_000), ..Default::default() });
        assert_eq!(c.compaction["char_budget"], 40_000);
        assert_eq!(c.items.iter().filter(|i| i["kind"] == "event").count(), 5);
        assert_eq!(c.citations.len(), 8);
        assert_eq!(c.text.matches("(node:e").count(), 5);
        assert_eq!(c.compaction["applied"], false);
    }

    #[test]
    fn aggressive_omits_rule_json_and_caps_events() {
        let mut nodes = fixture();
        nodes.extend((3..=6).map(|i| event(&format!("e{i}"), "more")));
        let opts = ContextOptions { profile: Some(CompactionProfile::Aggressive), ..Default::default() };
        let c = run(&nodes, &defs(), opts);
        assert!(!c.text.contains("if=") && !c.text.contains("then="), "{}", c.text);
        assert!(c.text.ends_with("summary=prefer json (node:r1)"), "{}", c.text);
        assert_eq!(ids(&c.items), ["t1", "a", "e1", "e2", "r1"]);
        assert_eq!(c.items[4]["if_json"], json!({"intent": "json"}), "items keep the rule's json");
        assert_eq!(c.compaction["profile"], "aggressive");
        assert_eq!(c.compaction["char_budget"], Value::Null);
    }

    #[test]
    fn rules_without_defs_fall_back_to_slots() {
        let r = with(node("r2", "rule"), |n| {
            n.slots.insert("if".into(), json!({"b": 1.0, "aa": [true, null], "10": "x", "2": "y"}));
            n.slots.insert("then".into(), json!({}));
            n.slots.insert("exceptions".into(), Value::Null);
        });
        let c = run(&[r], &HashMap::new(), ContextOptions::default());
        assert_eq!(
            c.text,
            "# Applicable Rules (Shadow/Active)\n- state=unknown summary=(none) (node:r2)\n\
             \x20 if={\"2\":\"y\",\"10\":\"x\",\"b\":1,\"aa\":[true,null]}\n  then={}"
        );
        assert_eq!(
            c.items[0],
            json!({"kind": "rule", "node_id": "r2", "if_json": {"b": 1.0, "aa": [true, null], "10": "x", "2": "y"},
                   "then_json": {}, "commit_id": "c-r2"})
        );
    }

    #[test]
    fn rule_qualifiers_follow_scope_and_truthiness() {
        let team = RuleDef {
            state: "shadow".into(),
            rule_scope: Some("team".into()),
            target_agent_id: Some("bot".into()),
            target_team_id: Some("ops".into()),
            if_json: json!(0),
            then_json: json!(""),
            ..def()
        };
        let blank = RuleDef { rule_scope: Some(String::new()), if_json: Value::Null, then_json: json!(false), ..def() };
        let nodes = vec![node("r1", "rule"), node("r2", "rule")];
        let defs: HashMap<String, RuleDef> =
            [("r1".to_string(), team), ("r2".to_string(), blank)].into_iter().collect();
        let c = run(&nodes, &defs, ContextOptions::default());
        assert_eq!(
            c.text,
            "# Applicable Rules (Shadow/Active)\n\
             - state=shadow scope=team target_team=ops pos=2 neg=1 summary=(none) (node:r1)\n\
             - state=active pos=2 neg=1 summary=(none) (node:r2)"
        );
        assert_eq!(c.items[1]["rule_scope"], "");
        assert_eq!(c.items[1]["then_json"], false);
    }

    #[test]
    fn lengths_count_utf16_units() {
        let nodes = vec![with(node("t", "topic"), |n| n.title = Some("🦀".into()))];
        let c = run(&nodes, &HashMap::new(), ContextOptions::default());
        assert_eq!(c.text, "# Topics / Concepts\n- 🦀 (node:t)");
        // 32 chars, 33 UTF-16 units.
        assert_eq!(c.compaction["before_chars"], 33);
        assert_eq!(c.compaction["before_est_tokens"], 9);
    }

    #[test]
    fn draft_topics_are_skipped_and_do_not_use_slots() {
        let mut nodes: Vec<StoredNode> = (0..4)
            .map(|i| {
                with(node(&format!("d{i}"), "topic"), |n| {
                    n.slots.insert("topic_state".into(), json!("draft"));
                })
            })
            .collect();
        nodes.extend((0..5).map(|i| with(node(&format!("t{i}"), "topic"), |n| n.title = Some(format!("T{i}")))));
        let c = run(&nodes, &HashMap::new(), ContextOptions::default());
        assert_eq!(ids(&c.items), ["t0", "t1", "t2", "t3"]);
        assert!(!c.text.contains("node:d"));
    }

    #[test]
    fn empty_and_draft_only_input_gives_empty_context() {
        let c = build(&[], &HashMap::new(), &ContextOptions::default(), None);
        assert_eq!((c.text.as_str(), c.items.len(), c.citations.len()), ("", 0, 0));
        assert_eq!(c.compaction["before_est_tokens"], 0);
        let d = with(node("d", "topic"), |n| {
            n.slots.insert("topic_state".into(), json!("draft"));
        });
        let c = build(&[&d], &HashMap::new(), &ContextOptions { char_budget: Some(1), ..Default::default() }, None);
        assert_eq!((c.text.as_str(), c.items.len(), c.citations.len()), ("", 0, 0));
        assert_eq!(c.compaction["applied"], false);
    }

    #[test]
    fn javascript_number_parsing() {
        for (s, want) in [("", 0.0), (" 12 ", 12.0), ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("-0b11", f64::NAN)] {
            let got = js_string_to_number(s);
            assert!(got == want || (got.is_nan() && want.is_nan()), "{s:?}: {got}");
        }
        for s in ["inf", "NaN", "1e", "e5", ".", "1_0", "0x"] {
            assert!(js_string_to_number(s).is_nan(), "{s:?}");
        }
        assert_eq!(js_string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(js_to_number(&json!([7])), 7.0);
        assert_eq!(js_to_number(&json!([])), 0.0);
        assert_eq!(js_to_number(&json!(true)), 1.0);
        assert!(js_to_number(&json!({})).is_nan());
    }
}
