//! A [`Drawing`] as one self-contained HTML page: the picture as inline SVG laid out
//! here, then the same facts as tables (nodes; channels). No script, no external style
//! sheet, font or image: the page opens from a file, offline, and prints.
//!
//! Layout: the network is a bar across the top; nodes are boxes in rows of up to
//! [`COLUMNS`], each row hanging from a bus line joined to the bar by a trunk on the
//! left, so no link crosses a box. A node's box lists its name, address, labels and
//! state (its border coloured by state), then its instances; channels are arrows from
//! writer to reader (solid for a pipe, dashed for TCP). The page is well-formed XML
//! (every element closed), so it also reads as XHTML.

use std::fmt::Write;

use super::{node_lines, Drawing};

/// Node boxes per row.
const COLUMNS: usize = 4;
/// A node box's width, and the gap between boxes.
const BOX_W: usize = 230;
const GAP: usize = 60;
/// Space around the picture; the trunk runs in the left one.
const MARGIN: usize = 20;
const LEFT: usize = MARGIN + 30;
/// The network bar's height, and the space under it before the first row's bus.
const BAR_H: usize = 36;
const BUS_GAP: usize = 24;
/// A text line's height in a box, an instance's height and the space between them.
const LINE_H: usize = 17;
const INST_H: usize = 24;
const INST_GAP: usize = 6;
/// The most characters of a line a box shows (the whole line is its tooltip).
const LINE_CHARS: usize = 32;

/// The drawing as an HTML page.
pub fn html(drawing: &Drawing) -> String {
    let title = format!("zerolab graph: {}", drawing.title());
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    out.push_str(STYLE);
    out.push_str("</head>\n<body>\n");
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(out, "<p>Network: {}</p>", escape(&drawing.network));
    out.push_str(&svg(drawing));
    if drawing.job.is_some() {
        out.push_str(
            "<p>Arrows are channels, from writer to reader: solid, a pipe between two instances on one node; \
             dashed, TCP between the nodes' agents.</p>\n",
        );
    }
    out.push_str(&tables(drawing));
    out.push_str("</body>\n</html>\n");
    out
}

const STYLE: &str = "<style>\n\
body { font-family: sans-serif; margin: 1.5em; color: #202124; }\n\
svg { display: block; max-width: 100%; height: auto; margin: 1em 0; }\n\
table { border-collapse: collapse; margin-bottom: 1.5em; }\n\
th, td { border: 1px solid #dadce0; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }\n\
th { background: #f1f3f4; }\n\
</style>\n";

/// Where one node's box and its instances are.
struct Placed {
    x: usize,
    y: usize,
    height: usize,
    /// Each instance's index and the top of its rectangle.
    instances: Vec<(usize, usize)>,
}

fn layout(drawing: &Drawing) -> (Vec<Placed>, Vec<usize>, usize) {
    let mut placed = Vec::new();
    let mut buses = Vec::new();
    let mut top = MARGIN + BAR_H + BUS_GAP;
    for row in drawing.nodes.chunks(COLUMNS) {
        buses.push(top);
        let boxes_top = top + BUS_GAP;
        let mut row_height = 0;
        for (column, node) in row.iter().enumerate() {
            let x = LEFT + column * (BOX_W + GAP);
            let header = 10 + node_lines(node).len() * LINE_H + 8;
            let instances: Vec<(usize, usize)> = node
                .instances
                .iter()
                .enumerate()
                .map(|(k, &i)| (i, boxes_top + header + k * (INST_H + INST_GAP)))
                .collect();
            let height = header + node.instances.len() * (INST_H + INST_GAP) + 4;
            row_height = row_height.max(height);
            placed.push(Placed { x, y: boxes_top, height, instances });
        }
        top = boxes_top + row_height + BUS_GAP + 8;
    }
    (placed, buses, top)
}

fn svg(drawing: &Drawing) -> String {
    let (placed, buses, bottom) = layout(drawing);
    let columns = drawing.nodes.len().clamp(1, COLUMNS);
    let width = LEFT + columns * (BOX_W + GAP) - GAP + MARGIN;
    let height = bottom + MARGIN;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} \
         {height}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"12\">",
        escape(&drawing.title())
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#1a73e8\"/></marker>\
         </defs>\n",
    );
    // The network bar, the trunk down the left, a bus over each row, a drop to each box.
    let bar_w = width - 2 * MARGIN;
    let _ = writeln!(
        out,
        "<g class=\"network\"><rect x=\"{MARGIN}\" y=\"{MARGIN}\" width=\"{bar_w}\" height=\"{BAR_H}\" rx=\"6\" \
         fill=\"#e8f0fe\" stroke=\"#1a73e8\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        MARGIN + bar_w / 2,
        MARGIN + BAR_H / 2 + 5,
        escape(&drawing.network)
    );
    let trunk = MARGIN + 12;
    if let Some(&last) = buses.last() {
        let _ = writeln!(out, "{}", line(trunk, MARGIN + BAR_H, trunk, last));
    }
    for (row, &bus) in buses.iter().enumerate() {
        let last = placed[(row * COLUMNS + COLUMNS).min(placed.len()) - 1].x + BOX_W / 2;
        let _ = writeln!(out, "{}", line(trunk, bus, last, bus));
        for p in placed.iter().skip(row * COLUMNS).take(COLUMNS) {
            let _ = writeln!(out, "{}", line(p.x + BOX_W / 2, bus, p.x + BOX_W / 2, p.y));
        }
    }
    out.push_str("</g>\n");
    for (node, p) in drawing.nodes.iter().zip(&placed) {
        out.push_str(&node_box(drawing, node, p));
    }
    if let Some(job) = &drawing.job {
        // Where each instance's rectangle starts.
        let mut at = vec![(0, 0); job.instances.len()];
        for p in &placed {
            for &(i, y) in &p.instances {
                at[i] = (p.x + 16, y);
            }
        }
        out.push_str("<g class=\"channels\" fill=\"none\" stroke=\"#1a73e8\" stroke-width=\"1.5\">\n");
        for channel in &job.channels {
            let (from, to) = (at[channel.from], at[channel.to]);
            let _ = writeln!(
                out,
                "<path d=\"{}\"{} marker-end=\"url(#arrow)\"><title>{} to {} ({})</title></path>",
                curve(from, to),
                if channel.local { "" } else { " stroke-dasharray=\"6 4\"" },
                escape(&job.instances[channel.from]),
                escape(&job.instances[channel.to]),
                if channel.local { "pipe" } else { "tcp" }
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// A node's box: its lines, then its instances.
fn node_box(drawing: &Drawing, node: &super::DrawnNode, p: &Placed) -> String {
    let (fill, stroke) = match node.state.as_deref() {
        Some("ready") => ("#e6f4ea", "#1e8e3e"),
        Some("failed") => ("#fce8e6", "#d93025"),
        Some("unreachable") => ("#fef7e0", "#f29900"),
        _ => ("#f8f9fa", "#5f6368"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<g class=\"node\" id=\"node-{}\"><rect x=\"{}\" y=\"{}\" width=\"{BOX_W}\" height=\"{}\" rx=\"8\" \
         fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
        escape(&node.name),
        p.x,
        p.y,
        p.height
    );
    for (k, text) in node_lines(node).iter().enumerate() {
        let weight = if k == 0 { " font-weight=\"bold\" font-size=\"13\"" } else { "" };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\"{weight}>{}<title>{}</title></text>",
            p.x + 12,
            p.y + 10 + (k + 1) * LINE_H - 4,
            escape(&shortened(text)),
            escape(text)
        );
    }
    if let Some(job) = &drawing.job {
        for &(i, y) in &p.instances {
            let _ = writeln!(
                out,
                "<g class=\"instance\"><rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{INST_H}\" rx=\"12\" \
                 fill=\"#ffffff\" stroke=\"#5f6368\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
                p.x + 16,
                BOX_W - 32,
                p.x + BOX_W / 2,
                y + INST_H / 2 + 4,
                escape(&job.instances[i])
            );
        }
    }
    out.push_str("</g>\n");
    out
}

/// A channel's path from the instance whose rectangle starts at `from` to the one at
/// `to`: side to side, bulging right when both are in one column.
fn curve((fx, fy): (usize, usize), (tx, ty): (usize, usize)) -> String {
    let width = BOX_W - 32;
    let (fy, ty) = (fy + INST_H / 2, ty + INST_H / 2);
    match tx.cmp(&fx) {
        std::cmp::Ordering::Equal => {
            let (x, bulge) = (fx + width, fx + width + 40);
            format!("M{x},{fy} C{bulge},{fy} {bulge},{ty} {x},{ty}")
        }
        std::cmp::Ordering::Greater => {
            let (x1, x2) = (fx + width, tx);
            let mid = (x1 + x2) / 2;
            format!("M{x1},{fy} C{mid},{fy} {mid},{ty} {x2},{ty}")
        }
        std::cmp::Ordering::Less => {
            let (x1, x2) = (fx, tx + width);
            let mid = (x1 + x2) / 2;
            format!("M{x1},{fy} C{mid},{fy} {mid},{ty} {x2},{ty}")
        }
    }
}

/// A link of the network, from (x1, y1) to (x2, y2).
fn line(x1: usize, y1: usize, x2: usize, y2: usize) -> String {
    format!("<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#1a73e8\" stroke-width=\"1.5\"/>")
}

/// The page's tables: every node, then every channel.
fn tables(drawing: &Drawing) -> String {
    let mut out = String::from(
        "<h2>Nodes</h2>\n<table class=\"nodes\">\n<thead><tr><th>node</th><th>address</th><th>labels</th>\
         <th>state</th><th>instances</th></tr></thead>\n<tbody>\n",
    );
    for node in &drawing.nodes {
        let instances: Vec<&str> = match &drawing.job {
            Some(job) => node.instances.iter().map(|&i| job.instances[i].as_str()).collect(),
            None => Vec::new(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&node.name),
            escape(&node.address),
            escape(&node.labels.join(", ")),
            escape(node.state.as_deref().unwrap_or("-")),
            escape(&instances.join(", "))
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if let Some(job) = &drawing.job {
        out.push_str(
            "<h2>Channels</h2>\n<table class=\"channels\">\n<thead><tr><th>from</th><th>to</th><th>carried by</th>\
             </tr></thead>\n<tbody>\n",
        );
        for channel in &job.channels {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&job.instances[channel.from]),
                escape(&job.instances[channel.to]),
                if channel.local { "pipe (one node)" } else { "tcp (between agents)" }
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out
}

/// `text`, cut to [`LINE_CHARS`] characters with `…` when longer.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` safe in HTML and XML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::drawing;
    use super::*;

    #[test]
    fn the_page_draws_every_node_and_instance_and_loads_nothing() {
        let page = html(&drawing(true));
        for name in ["node-1", "node-2", "map-1", "map-2", "reduce", "10.77.0.3", "zone=a"] {
            assert!(page.contains(&format!(">{name}<")), "{name} missing:\n{page}");
        }
        assert_eq!(page.matches("<g class=\"node\"").count(), 2);
        assert_eq!(page.matches("marker-end=").count(), 2);
        assert_eq!(page.matches("stroke-dasharray").count(), 1, "one tcp channel is dashed");
        assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="), "{page}");
    }

    #[test]
    fn rows_wrap_and_long_lines_are_shortened_with_the_whole_line_as_tooltip() {
        let mut many = drawing(false);
        many.job = None;
        let template = many.nodes[1].clone();
        many.nodes = (1..=9).map(|i| super::super::DrawnNode { name: format!("n-{i}"), ..template.clone() }).collect();
        many.nodes[0].labels = vec![format!("long={}", "x".repeat(40))];
        let (placed, buses, _) = layout(&many);
        assert_eq!(buses.len(), 3, "9 nodes in rows of {COLUMNS}");
        assert_eq!(placed[4].x, placed[0].x);
        assert!(placed[4].y > placed[0].y + placed[0].height);
        let page = html(&many);
        assert!(page.contains(&format!(">long={}…<title>long={}</title>", "x".repeat(27), "x".repeat(40))), "{page}");
        assert_eq!(escape("<a & 'b'>\""), "&lt;a &amp; &#39;b&#39;&gt;&quot;");
    }
}
