//! `$regex` conditions, safely.
//!
//! Patterns run on `regex-lite`, whose matcher is linear in the input, so no
//! pattern can backtrack catastrophically. On top of that the reference's
//! safety screen decides which patterns are refused outright (they never
//! match): longer than 256 characters, backreferences, lookarounds, more
//! than 32 groups or 24 quantifiers, a quantifier on a group that already
//! repeats (`(a+)+`) or on a group with alternation (`(a|b)*`), or two broad
//! wildcards (`.*` / `.+`). A pattern that does not compile never matches.

use regex_lite::Regex;
use std::collections::HashMap;

const MAX_LEN: usize = 256;
const MAX_GROUPS: usize = 32;
const MAX_QUANTIFIERS: usize = 24;
/// Compiled programs are bounded too (`regex-lite`'s size limit).
const MAX_PROGRAM_BYTES: usize = 1 << 20;

/// Why the screen refused a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Empty,
    TooLong,
    Backreference,
    Lookaround,
    TooManyGroups,
    TooManyQuantifiers,
    NestedQuantifier,
    QuantifiedAlternation,
    BroadWildcards,
}

#[derive(Default)]
struct Group {
    repeats: bool,
    alternates: bool,
}

/// The reference's safety screen.
pub fn screen(pattern: &str) -> Result<(), Refusal> {
    if pattern.is_empty() {
        return Err(Refusal::Empty);
    }
    if pattern.chars().count() > MAX_LEN {
        return Err(Refusal::TooLong);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut stack: Vec<Group> = vec![Group::default()];
    let (mut groups, mut quantifiers, mut broad) = (0usize, 0usize, 0usize);
    let mut in_class = false;
    // What a following quantifier would apply to: a closed group's flags.
    let mut last_group: Option<Group> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut closed: Option<Group> = None;
        match c {
            '\\' => {
                let next = chars.get(i + 1).copied().unwrap_or('\0');
                if next.is_ascii_digit() && next != '0' || next == 'k' {
                    return Err(Refusal::Backreference);
                }
                i += 2;
                last_group = None;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i + 2..].iter().take(2).collect();
                    if rest.starts_with('=') || rest.starts_with('!') || rest == "<=" || rest == "<!" {
                        return Err(Refusal::Lookaround);
                    }
                }
                groups += 1;
                if groups > MAX_GROUPS {
                    return Err(Refusal::TooManyGroups);
                }
                stack.push(Group::default());
            }
            ')' if stack.len() > 1 => {
                let g = stack.pop().expect("open group");
                if g.repeats
                    && let Some(parent) = stack.last_mut()
                {
                    parent.repeats = true;
                }
                closed = Some(g);
            }
            '|' => stack.last_mut().expect("root").alternates = true,
            '*' | '+' | '?' | '{' => {
                let is_quantifier = c != '{' || quantifier_braces(&chars[i..]).is_some();
                // `?` right after `(` is a group flag, after a quantifier it is laziness.
                let lazy_or_flag = c == '?' && i > 0 && matches!(chars[i - 1], '(' | '*' | '+' | '?' | '}');
                if is_quantifier && !lazy_or_flag {
                    quantifiers += 1;
                    if quantifiers > MAX_QUANTIFIERS {
                        return Err(Refusal::TooManyQuantifiers);
                    }
                    if let Some(g) = &last_group {
                        if g.repeats {
                            return Err(Refusal::NestedQuantifier);
                        }
                        if g.alternates {
                            return Err(Refusal::QuantifiedAlternation);
                        }
                    }
                    if (c == '*' || c == '+') && i > 0 && chars[i - 1] == '.' && (i < 2 || chars[i - 2] != '\\') {
                        broad += 1;
                        if broad >= 2 {
                            return Err(Refusal::BroadWildcards);
                        }
                    }
                    stack.last_mut().expect("root").repeats = true;
                    if c == '{' {
                        i += quantifier_braces(&chars[i..]).unwrap_or(1);
                        last_group = None;
                        continue;
                    }
                }
            }
            _ => {}
        }
        last_group = closed;
        i += 1;
    }
    Ok(())
}

/// Length of a `{n}`, `{n,}` or `{n,m}` quantifier at the start of `s`.
fn quantifier_braces(s: &[char]) -> Option<usize> {
    let end = s.iter().position(|c| *c == '}')?;
    let body: String = s[1..end].iter().collect();
    let ok = !body.is_empty()
        && body.split(',').count() <= 2
        && body.split(',').enumerate().all(|(i, p)| p.chars().all(|c| c.is_ascii_digit()) && (i == 1 || !p.is_empty()));
    ok.then_some(end + 1)
}

/// Compiled patterns of one evaluation (each pattern is screened and
/// compiled once, however many rules and contexts use it).
#[derive(Default)]
pub struct RegexCache {
    compiled: HashMap<String, Option<Regex>>,
}

impl RegexCache {
    /// Whether `pattern` (screened) matches anywhere in `text`.
    pub fn is_match(&mut self, pattern: &str, text: &str) -> bool {
        let re = self.compiled.entry(pattern.to_string()).or_insert_with(|| {
            screen(pattern).ok()?;
            regex_lite::RegexBuilder::new(pattern).size_limit(MAX_PROGRAM_BYTES).build().ok()
        });
        re.as_ref().is_some_and(|r| r.is_match(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference [L] contract-smoke cases.
    #[test]
    fn reference_cases() {
        let mut c = RegexCache::default();
        assert!(c.is_match("j.*n", "json"));
        assert!(!c.is_match("(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!c.is_match("(?=json).*", "json"));
        assert!(!c.is_match("(a)\\1", "aa"));
    }

    #[test]
    fn screen_refusals() {
        assert_eq!(screen(""), Err(Refusal::Empty));
        assert_eq!(screen(&"a".repeat(257)), Err(Refusal::TooLong));
        assert_eq!(screen("(?<!x)y"), Err(Refusal::Lookaround));
        assert_eq!(screen("(?<name>a)\\k<name>"), Err(Refusal::Backreference));
        assert_eq!(screen("(a|b)*"), Err(Refusal::QuantifiedAlternation));
        assert_eq!(screen("(x(a*)y){2,5}"), Err(Refusal::NestedQuantifier));
        assert_eq!(screen(".*a.+"), Err(Refusal::BroadWildcards));
        assert_eq!(screen(&"(a)".repeat(33)), Err(Refusal::TooManyGroups));
        assert_eq!(screen(&"a+".repeat(25)), Err(Refusal::TooManyQuantifiers));
        for ok in ["^dep.*", "a{2,3}b", "[(+*]+x", "(?:ab)+", "\\d+\\.\\d+", "a+?b", "(a|b)c", "\\.*\\.*"] {
            assert_eq!(screen(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_patterns_never_match() {
        let mut c = RegexCache::default();
        assert!(!c.is_match("(", "("));
        assert!(!c.is_match("", "anything"));
        assert!(c.is_match("^run-\\d+$", "run-42"));
    }
}
