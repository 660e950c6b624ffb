//! A [`Drawing`] as text for other tools: a Mermaid flowchart ([`mermaid`]) or a
//! Graphviz digraph ([`dot`]).
//!
//! Both have the same shape: the network as one shape, a box per node linked to it, and
//! with a job each node a group (Mermaid subgraph, DOT cluster) holding the node's box
//! and its instances, channels as arrows between instances (solid `pipe` on one node,
//! dashed `tcp` between nodes). Identifiers are positional (`n0`, `i3`), so no name
//! needs escaping where the syntax is strict; names appear only in quoted labels.

use std::fmt::Write;

use super::{node_lines, Drawing};

/// The drawing as a Mermaid flowchart (`flowchart TB`).
pub fn mermaid(drawing: &Drawing) -> String {
    let quote =
        |text: &str| text.replace('&', "#amp;").replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;");
    let lines = |lines: Vec<String>| lines.iter().map(|line| quote(line)).collect::<Vec<_>>().join("<br/>");
    let mut out = String::new();
    // The comment after the diagram's type: Mermaid reads the type from the first line.
    out.push_str("flowchart TB\n");
    let _ = writeln!(out, "%% zerolab graph: {}", drawing.title());
    let _ = writeln!(out, "  net{{{{\"{}\"}}}}", quote(&drawing.network));
    for (n, node) in drawing.nodes.iter().enumerate() {
        let label = lines(node_lines(node));
        match &drawing.job {
            None => {
                let _ = writeln!(out, "  n{n}[\"{label}\"]");
            }
            Some(job) => {
                let _ = writeln!(out, "  subgraph s{n} [\"{}\"]", quote(&node.name));
                let _ = writeln!(out, "    n{n}[\"{label}\"]");
                for &i in &node.instances {
                    let _ = writeln!(out, "    i{i}([\"{}\"])", quote(&job.instances[i]));
                }
                out.push_str("  end\n");
            }
        }
    }
    for n in 0..drawing.nodes.len() {
        let _ = writeln!(out, "  net --- n{n}");
    }
    for channel in drawing.job.iter().flat_map(|job| &job.channels) {
        let (from, to) = (channel.from, channel.to);
        let _ = match channel.local {
            true => writeln!(out, "  i{from} -->|pipe| i{to}"),
            false => writeln!(out, "  i{from} -. tcp .-> i{to}"),
        };
    }
    out
}

/// The drawing as a Graphviz digraph (`dot -Tsvg`).
pub fn dot(drawing: &Drawing) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let lines = |lines: Vec<String>| quote(&lines.join("\n")).replace('\n', "\\n");
    let mut out = String::new();
    let _ = writeln!(out, "// zerolab graph: {}", drawing.title());
    let _ = writeln!(out, "digraph {} {{", quote(&drawing.lab));
    out.push_str("  rankdir=TB;\n  node [fontname=\"sans-serif\", shape=box];\n");
    let _ = writeln!(out, "  net [shape=hexagon, label={}];", quote(&drawing.network));
    for (n, node) in drawing.nodes.iter().enumerate() {
        let label = lines(node_lines(node));
        match &drawing.job {
            None => {
                let _ = writeln!(out, "  n{n} [label={label}];");
            }
            Some(job) => {
                let _ = writeln!(out, "  subgraph cluster_{n} {{");
                let _ = writeln!(out, "    label={};", quote(&node.name));
                let _ = writeln!(out, "    n{n} [label={label}];");
                for &i in &node.instances {
                    let _ = writeln!(out, "    i{i} [shape=box, style=rounded, label={}];", quote(&job.instances[i]));
                }
                out.push_str("  }\n");
            }
        }
    }
    for n in 0..drawing.nodes.len() {
        let _ = writeln!(out, "  net -> n{n} [dir=none];");
    }
    for channel in drawing.job.iter().flat_map(|job| &job.channels) {
        let (from, to) = (channel.from, channel.to);
        let _ = match channel.local {
            true => writeln!(out, "  i{from} -> i{to} [label=\"pipe\"];"),
            false => writeln!(out, "  i{from} -> i{to} [label=\"tcp\", style=dashed];"),
        };
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::drawing;
    use super::*;

    #[test]
    fn mermaid_groups_instances_by_node_and_styles_channels_by_kind() {
        assert_eq!(
            mermaid(&drawing(true)),
            "flowchart TB\n\
             %% zerolab graph: lab demo, job wc\n  \
             net{{\"netns bridge zlabcdefb, 10.77.0.0/24, host 10.77.0.1\"}}\n  \
             subgraph s0 [\"node-1\"]\n    \
             n0[\"node-1<br/>10.77.0.2<br/>zone=a<br/>state: ready\"]\n    \
             i0([\"map-1\"])\n    \
             i2([\"reduce\"])\n  \
             end\n  \
             subgraph s1 [\"node-2\"]\n    \
             n1[\"node-2<br/>10.77.0.3<br/>state: failed\"]\n    \
             i1([\"map-2\"])\n  \
             end\n  \
             net --- n0\n  \
             net --- n1\n  \
             i0 -->|pipe| i2\n  \
             i1 -. tcp .-> i2\n"
        );
    }

    #[test]
    fn quotes_are_escaped_in_labels() {
        let mut drawing = drawing(false);
        drawing.job = None;
        drawing.nodes[0].labels = vec!["note=\"a<b>\"".into()];
        let text = mermaid(&drawing);
        assert!(text.contains("n0[\"node-1<br/>10.77.0.2<br/>note=#quot;a#lt;b#gt;#quot;\"]\n"), "{text}");
        let text = dot(&drawing);
        assert!(text.contains("n0 [label=\"node-1\\n10.77.0.2\\nnote=\\\"a<b>\\\"\"];\n"), "{text}");
    }
}
