//! Packed inverted lists. Each list of the index is one BLOB:
//!
//! ```text
//! u32 dims | u32 count | count × ( 16-byte id | f32 scale | dims × i8 code )
//! ```
//!
//! little-endian, ids the 16 bytes of a node UUID. Reading a list is one row
//! read; scanning it is a tight loop over int8 codes. A probe scans the
//! `nprobe` lists nearest the query and keeps the best candidates, which the
//! caller re-ranks with the exact vectors.

use crate::quant::{Code, dot_codes};

pub const ID_BYTES: usize = 16;
const HEADER: usize = 8;

fn entry_len(dims: usize) -> usize {
    ID_BYTES + 4 + dims
}

/// An empty list for vectors of `dims` dimensions.
pub fn empty(dims: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER);
    b.extend_from_slice(&(dims as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

/// `(dims, count)` of a list, or `None` when the blob is not one.
pub fn header(blob: &[u8]) -> Option<(usize, usize)> {
    if blob.len() < HEADER {
        return None;
    }
    let dims = u32::from_le_bytes(blob[0..4].try_into().ok()?) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().ok()?) as usize;
    (blob.len() == HEADER + count * entry_len(dims)).then_some((dims, count))
}

fn set_count(blob: &mut [u8], count: usize) {
    blob[4..8].copy_from_slice(&(count as u32).to_le_bytes());
}

/// Adds (or replaces) `id`'s entry. Returns `false` when the list is
/// malformed or the code has another dimension.
pub fn upsert(blob: &mut Vec<u8>, id: &[u8; ID_BYTES], code: &Code) -> bool {
    let Some((dims, _)) = header(blob) else { return false };
    if code.code.len() != dims {
        return false;
    }
    remove(blob, id);
    blob.extend_from_slice(id);
    blob.extend_from_slice(&code.scale.to_le_bytes());
    blob.extend(code.code.iter().map(|c| *c as u8));
    let count = (blob.len() - HEADER) / entry_len(dims);
    set_count(blob, count);
    true
}

/// Removes `id`'s entry; `true` if it was there.
pub fn remove(blob: &mut Vec<u8>, id: &[u8; ID_BYTES]) -> bool {
    let Some((dims, count)) = header(blob) else { return false };
    let len = entry_len(dims);
    for i in 0..count {
        let at = HEADER + i * len;
        if &blob[at..at + ID_BYTES] == id {
            // Move the last entry into the hole (order does not matter).
            let last = HEADER + (count - 1) * len;
            if at != last {
                let (head, tail) = blob.split_at_mut(last);
                head[at..at + len].copy_from_slice(&tail[..len]);
            }
            blob.truncate(last);
            set_count(blob, count - 1);
            return true;
        }
    }
    false
}

/// The ids in a list.
pub fn ids(blob: &[u8]) -> Vec<[u8; ID_BYTES]> {
    let Some((dims, count)) = header(blob) else { return Vec::new() };
    let len = entry_len(dims);
    (0..count).map(|i| blob[HEADER + i * len..HEADER + i * len + ID_BYTES].try_into().expect("16 bytes")).collect()
}

/// The best `k` (id, approximate score) seen so far.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    items: Vec<([u8; ID_BYTES], f32)>,
    floor: f32,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK { k: k.max(1), items: Vec::with_capacity(k.max(1) * 2), floor: f32::NEG_INFINITY }
    }

    fn push(&mut self, id: [u8; ID_BYTES], score: f32) {
        if self.items.len() >= self.k && score <= self.floor {
            return;
        }
        self.items.push((id, score));
        // Amortized: prune to k when the buffer doubles.
        if self.items.len() >= self.k * 2 {
            self.prune();
        }
    }

    fn prune(&mut self) {
        self.items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        self.items.truncate(self.k);
        if self.items.len() >= self.k {
            self.floor = self.items[self.k - 1].1;
        }
    }

    /// Best first.
    pub fn into_sorted(mut self) -> Vec<([u8; ID_BYTES], f32)> {
        self.prune();
        self.items
    }
}

/// Scores every entry of `blob` against the unit `query` into `top`.
/// Returns how many entries were scanned. The query is quantized like the
/// codes, so the inner loop is integer arithmetic; quantize it once with
/// [`crate::quant::quantize`] and use [`scan_code`] when scanning many lists.
pub fn scan(blob: &[u8], query: &[f32], top: &mut TopK) -> usize {
    scan_code(blob, &crate::quant::quantize(query), top)
}

/// [`scan`] for an already quantized query.
pub fn scan_code(blob: &[u8], query: &Code, top: &mut TopK) -> usize {
    scan_code_except(blob, query, top, |_| false)
}

/// [`scan_code`], passing over the entries whose id `skip` names (those a
/// list's pending changes replace, see [`Change`]).
pub fn scan_code_except(blob: &[u8], query: &Code, top: &mut TopK, skip: impl Fn(&[u8; ID_BYTES]) -> bool) -> usize {
    let Some((dims, count)) = header(blob) else { return 0 };
    if dims != query.code.len() {
        return 0;
    }
    let len = entry_len(dims);
    let mut scanned = 0;
    for i in 0..count {
        let at = HEADER + i * len;
        let id: [u8; ID_BYTES] = blob[at..at + ID_BYTES].try_into().expect("16 bytes");
        if skip(&id) {
            continue;
        }
        scanned += 1;
        top.push(id, score_entry_code(&blob[at + ID_BYTES..at + len], query));
    }
    scanned
}

/// `scale | code` of one entry against a quantized query.
fn score_entry_code(scale_and_code: &[u8], query: &Code) -> f32 {
    let scale = f32::from_le_bytes(scale_and_code[..4].try_into().expect("4 bytes"));
    // SAFETY-free reinterpretation: i8 and u8 have the same layout.
    let code: &[i8] = bytemuck_i8(&scale_and_code[4..]);
    dot_codes(query.scale, &query.code, scale, code)
}

/// One list entry's bytes (`id | scale | code`), as a pending change stores it.
pub fn entry_bytes(id: &[u8; ID_BYTES], code: &Code) -> Vec<u8> {
    let mut b = Vec::with_capacity(entry_len(code.code.len()));
    b.extend_from_slice(id);
    b.extend_from_slice(&code.scale.to_le_bytes());
    b.extend(code.code.iter().map(|c| *c as u8));
    b
}

/// A pending change to a list, kept beside it until it is folded in, so
/// adding a vector writes one small row instead of rewriting the list:
/// the node's new entry, or `None` when it left the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: [u8; ID_BYTES],
    pub entry: Option<Vec<u8>>,
}

/// A list's pending changes, oldest first, reduced to the latest per node.
pub fn latest(changes: &[Change]) -> std::collections::BTreeMap<[u8; ID_BYTES], Option<&[u8]>> {
    changes.iter().map(|d| (d.id, d.entry.as_deref())).collect()
}

/// Folds `changes` (oldest first) into `blob`. Returns `false` when the list
/// is malformed or an entry has another dimension (nothing is changed for
/// that entry).
pub fn fold(blob: &mut Vec<u8>, changes: &[Change]) -> bool {
    let Some((dims, _)) = header(blob) else { return false };
    let mut ok = true;
    for (id, entry) in latest(changes) {
        remove(blob, &id);
        match entry {
            Some(e) if e.len() == entry_len(dims) && e[..ID_BYTES] == id => {
                blob.extend_from_slice(e);
                let count = (blob.len() - HEADER) / entry_len(dims);
                set_count(blob, count);
            }
            Some(_) => ok = false,
            None => {}
        }
    }
    ok
}

/// Scans a list with its pending changes: the stored entries the changes
/// do not replace, then the changes' own entries. Returns how many entries
/// were scored.
pub fn scan_with_changes(blob: &[u8], changes: &[Change], query: &Code, top: &mut TopK) -> usize {
    if changes.is_empty() {
        return scan_code(blob, query, top);
    }
    let changed = latest(changes);
    let mut scanned = scan_code_except(blob, query, top, |id| changed.contains_key(id));
    let len = entry_len(query.code.len());
    for (id, entry) in changed {
        if let Some(e) = entry.filter(|e| e.len() == len) {
            top.push(id, score_entry_code(&e[ID_BYTES..], query));
            scanned += 1;
        }
    }
    scanned
}

fn bytemuck_i8(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have identical size and alignment; every bit
    // pattern is a valid i8.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const i8, b.len()) }
}

/// The coarse centroids as one list of int8 codes, entry `i` being
/// centroid `i` (its id holds `i`): ¼ of the f32 bytes, and ordering the
/// lists for a query is one [`scan_code`].
pub fn centroid_codes(centroids: &[Vec<f32>]) -> Vec<u8> {
    let dims = centroids.first().map_or(0, Vec::len);
    let mut blob = empty(dims);
    for (i, c) in centroids.iter().enumerate() {
        let mut id = [0u8; ID_BYTES];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        upsert(&mut blob, &id, &crate::quant::quantize(c));
    }
    blob
}

/// The lists of a [`centroid_codes`] blob, nearest to the query first.
pub fn order_lists(codes: &[u8], query: &Code) -> Vec<usize> {
    let n = header(codes).map_or(0, |(_, count)| count);
    let mut top = TopK::new(n);
    scan_code(codes, query, &mut top);
    top.into_sorted()
        .into_iter()
        .map(|(id, _)| u64::from_le_bytes(id[..8].try_into().expect("8 bytes")) as usize)
        .collect()
}

/// A UUID string as its 16 bytes.
pub fn uuid_bytes(s: &str) -> Option<[u8; ID_BYTES]> {
    let hex: Vec<u8> = s.bytes().filter(|c| *c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; ID_BYTES];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (hex[2 * i] as char).to_digit(16)?;
        let lo = (hex[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// 16 bytes as a lowercase hyphenated UUID (on recall's hot path: one
/// allocation, no formatting machinery).
pub fn uuid_string(b: &[u8; ID_BYTES]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(x >> 4) as usize]);
        out.push(HEX[(x & 15) as usize]);
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pending_changes_score_like_a_folded_list() {
        let mut r = crate::SplitMix64(9);
        let mut v = || crate::unit(&(0..16).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap();
        let id = |n: u8| [n; ID_BYTES];
        let mut base = empty(16);
        for n in 1..=4 {
            assert!(upsert(&mut base, &id(n), &crate::quant::quantize(&v())));
        }
        // Node 2 re-embedded, node 3 moved away, node 9 added, node 9
        // re-embedded again (the latest change counts).
        let changes = vec![
            Change { id: id(2), entry: Some(entry_bytes(&id(2), &crate::quant::quantize(&v()))) },
            Change { id: id(3), entry: None },
            Change { id: id(9), entry: Some(entry_bytes(&id(9), &crate::quant::quantize(&v()))) },
            Change { id: id(9), entry: Some(entry_bytes(&id(9), &crate::quant::quantize(&v()))) },
        ];
        let q = crate::quant::quantize(&v());
        let mut pending = TopK::new(10);
        assert_eq!(scan_with_changes(&base, &changes, &q, &mut pending), 4, "1, 4 stored; 2, 9 changed; 3 gone");
        let mut folded = base.clone();
        assert!(fold(&mut folded, &changes));
        assert_eq!(header(&folded), Some((16, 4)));
        let mut after = TopK::new(10);
        scan_code(&folded, &q, &mut after);
        assert_eq!(pending.into_sorted(), after.into_sorted(), "the same scores before and after folding");
        let mut ids = ids(&folded);
        ids.sort();
        assert_eq!(ids, [id(1), id(2), id(4), id(9)]);
        // A change of another dimension is refused, not folded.
        let bad = [Change { id: id(5), entry: Some(vec![0; 7]) }];
        assert!(!fold(&mut folded, &bad));
        assert_eq!(header(&folded), Some((16, 4)));
    }

    use super::*;
    use crate::kmeans::{nearest, nearest_n, train};
    use crate::quant::quantize;
    use crate::{SplitMix64, dot, unit};

    fn id(i: usize) -> [u8; ID_BYTES] {
        let mut b = [0u8; ID_BYTES];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        b
    }

    #[test]
    fn centroid_codes_order_lists_like_the_f32_centroids() {
        let mut r = SplitMix64(9);
        let centroids: Vec<Vec<f32>> =
            (0..40).map(|_| unit(&(0..64).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap()).collect();
        let codes = centroid_codes(&centroids);
        for _ in 0..50 {
            let q = unit(&(0..64).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap();
            let order = order_lists(&codes, &quantize(&q));
            assert_eq!(order.len(), 40);
            let exact = nearest_n(&centroids, &q, 40);
            // The nearest list agrees; int8 rounding may swap near-ties further down.
            assert_eq!(order[0], exact[0]);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..40).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lists_upsert_remove_and_round_trip_ids() {
        let mut l = empty(4);
        assert!(upsert(&mut l, &id(1), &quantize(&[1.0, 0.0, 0.0, 0.0])));
        assert!(upsert(&mut l, &id(2), &quantize(&[0.0, 1.0, 0.0, 0.0])));
        assert!(upsert(&mut l, &id(1), &quantize(&[0.0, 0.0, 1.0, 0.0])), "replace");
        assert_eq!(header(&l), Some((4, 2)));
        assert!(!upsert(&mut l, &id(3), &quantize(&[1.0, 0.0])), "dimension mismatch");
        let mut top = TopK::new(1);
        scan(&l, &[0.0, 0.0, 1.0, 0.0], &mut top);
        assert_eq!(top.into_sorted()[0].0, id(1));
        assert!(remove(&mut l, &id(1)));
        assert!(!remove(&mut l, &id(1)));
        assert_eq!(ids(&l), vec![id(2)]);
        let u = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(uuid_string(&uuid_bytes(u).unwrap()), u);
        assert_eq!(uuid_bytes("nope"), None);
    }

    /// recall@10 of IVF probing + exact re-ranking against exact search, on
    /// clustered synthetic vectors (the acceptance check, at small scale).
    #[test]
    fn probing_with_reranking_recalls_at_least_95_percent_of_the_exact_top_10() {
        let (dims, n, clusters) = (384, 6000, 60);
        // Per-dimension noise large enough that a cluster's members are only
        // ~0.26 similar to each other: neighbors spread over several lists.
        let noise: f32 = 0.3;
        let mut r = SplitMix64(11);
        let centers: Vec<Vec<f32>> = (0..clusters)
            .map(|_| unit(&(0..dims).map(|_| r.next_f64() as f32 - 0.5).collect::<Vec<_>>()).unwrap())
            .collect();
        let points: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let c = &centers[i % clusters];
                unit(&c.iter().map(|x| x + (r.next_f64() as f32 - 0.5) * noise).collect::<Vec<_>>()).unwrap()
            })
            .collect();
        let nlist = (n as f64).sqrt() as usize;
        // A training sample with a stride coprime to the clusters' period.
        let sample: Vec<Vec<f32>> = points.iter().step_by(7).cloned().collect();
        let centroids = train(&sample, nlist, 8, 7);
        let mut lists: Vec<Vec<u8>> = vec![empty(dims); centroids.len()];
        for (i, p) in points.iter().enumerate() {
            upsert(&mut lists[nearest(&centroids, p)], &id(i), &quantize(p));
        }
        let (queries, mut hits) = (100, 0usize);
        for q in 0..queries {
            let base = &points[(q * 37) % n];
            let query = unit(&base.iter().map(|x| x + (r.next_f64() as f32 - 0.5) * 0.05).collect::<Vec<_>>()).unwrap();
            let mut exact: Vec<(usize, f32)> = points.iter().enumerate().map(|(i, p)| (i, dot(&query, p))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let truth: Vec<usize> = exact.iter().take(10).map(|(i, _)| *i).collect();
            let mut top = TopK::new(100);
            for l in nearest_n(&centroids, &query, 8) {
                scan(&lists[l], &query, &mut top);
            }
            let mut reranked: Vec<(usize, f32)> = top
                .into_sorted()
                .into_iter()
                .map(|(b, _)| {
                    let i = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                    (i, dot(&query, &points[i]))
                })
                .collect();
            reranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            hits += reranked.iter().take(10).filter(|(i, _)| truth.contains(i)).count();
        }
        let recall = hits as f64 / (queries * 10) as f64;
        assert!(recall >= 0.95, "recall@10 = {recall}");
    }
}
