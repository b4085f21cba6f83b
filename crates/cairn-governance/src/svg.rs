//! Small inline SVG charts for the HTML report: no script, no external
//! assets, so the page renders the same from an archive or an email.

use std::fmt::Write;

pub const BLUE: &str = "#3b6ea8";
pub const RED: &str = "#c0392b";
pub const GREEN: &str = "#2e8b57";
pub const AMBER: &str = "#d68910";
const GRID: &str = "#d5d8dc";
const INK: &str = "#2c3e50";

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round axis maximum at or above `v` (1, 2, 5 × 10^k).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|m| *m >= v).unwrap_or(10.0 * p)
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 16.0;

fn frame(out: &mut String, title: &str, max: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(title)
    );
    for i in 0..=4 {
        let y = TOP + (H - TOP - BOTTOM) * f64::from(i) / 4.0;
        let v = max * f64::from(4 - i) / 4.0;
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{W}" y2="{y:.1}" stroke="{GRID}" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{INK}">{}</text>"#,
            LEFT - 4.0,
            y + 3.0,
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else if max >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            }
        );
    }
}

/// One bar per label: `total` in blue with its `part` in red over it, and
/// the part's share written above.
pub fn bars(title: &str, rows: &[(String, f64, f64)]) -> String {
    let mut out = String::new();
    let max = nice_max(rows.iter().map(|r| r.1).fold(0.0, f64::max));
    frame(&mut out, title, max);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT) / rows.len().max(1) as f64;
    let bw = (slot * 0.6).min(48.0);
    for (i, (label, total, part)) in rows.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bw) / 2.0;
        let h = plot_h * total / max;
        let ph = plot_h * part / max;
        let base = H - BOTTOM;
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{h:.1}" fill="{BLUE}"><title>{}: {total}</title></rect>"#,
            base - h,
            esc(label)
        );
        if *part > 0.0 {
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{RED}"/>"#,
                base - ph,
                ph.max(1.0)
            );
        }
        let share = if *total > 0.0 { format!("{:.1}%", part / total * 100.0) } else { String::new() };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{RED}">{share}</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{INK}">{}</text>"#,
            x + bw / 2.0,
            (base - h - 4.0).max(TOP - 2.0),
            x + bw / 2.0,
            H - 10.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// Lines over shared x labels: `series` is (name, colour, values).
pub fn lines(title: &str, labels: &[String], series: &[(&str, &str, Vec<f64>)]) -> String {
    let mut out = String::new();
    let max = nice_max(series.iter().flat_map(|s| s.2.iter().copied()).fold(0.0, f64::max));
    frame(&mut out, title, max);
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(2) as f64 - 1.0;
    // Room on the right for the last label, centred on its point.
    let x_of = |i: usize| LEFT + 8.0 + (W - LEFT - 48.0) * i as f64 / n;
    for (name, colour, values) in series {
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), H - BOTTOM - plot_h * v / max))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></polyline>"#,
            pts.join(" "),
            esc(name)
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>"#);
        }
    }
    // Every other label, so they do not collide.
    for (i, l) in labels.iter().enumerate().filter(|(i, _)| i % 2 == 1 || labels.len() <= 8) {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{INK}">{}</text>"#,
            x_of(i),
            H - 10.0,
            esc(l)
        );
    }
    let mut lx = LEFT + 8.0;
    for (name, colour, _) in series {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="2" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="11" font-size="11" fill="{INK}">{}</text>"#,
            lx + 14.0,
            esc(name)
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars of error budget consumed (1 = all of it), with the
/// 100 % line: (label, consumed, colour).
pub fn budget(title: &str, rows: &[(String, f64, &str)]) -> String {
    let row_h = 26.0;
    let h = 24.0 + row_h * rows.len() as f64;
    let label_w = 220.0;
    let max = rows.iter().map(|r| r.1).fold(1.0, f64::max).min(10.0);
    let scale = (W - label_w - 60.0) / max;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{}">"#,
        esc(title)
    );
    for (i, (label, consumed, colour)) in rows.iter().enumerate() {
        let y = 8.0 + row_h * i as f64;
        let w = (consumed.min(max) * scale).max(1.0);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="{INK}">{}</text><rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="16" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{INK}">{:.1}%</text>"#,
            label_w - 6.0,
            y + 12.0,
            esc(label),
            label_w + w + 4.0,
            y + 12.0,
            consumed * 100.0
        );
    }
    let x100 = label_w + scale;
    let _ = write!(
        out,
        r#"<line x1="{x100:.1}" y1="2" x2="{x100:.1}" y2="{:.1}" stroke="{RED}" stroke-dasharray="4 3"/><text x="{x100:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{RED}">budget</text></svg>"#,
        h - 12.0,
        h - 2.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_text_is_escaped() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(0.3), 0.5);
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let svg = bars("t", &[("<d>".into(), 10.0, 2.0)]);
        assert!(svg.contains("&lt;d&gt;") && svg.contains("20.0%"), "{svg}");
    }
}
