//! `zerolab graph` from the files alone (no lab is made): golden Mermaid and DOT for a
//! small cluster and job, an HTML page that is well-formed and names every node and
//! instance, and, where the tools are installed, Graphviz rendering the DOT and headless
//! Chromium rendering the page offline. (States of a lab that is up: `scripting`.)

use std::fs;
use std::process::Command;

use crate::harness::{program, zerolab_in, Run};

const CLUSTER: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: netns\nnetwork: {subnet: \
                       10.77.198.0/24}\nnodes:\n  - {name: node, count: 2, labels: {zone: a}}\n  - {name: edge, labels: \
                       {zone: b, role: gw}}\n";
const JOB: &str = "apiVersion: zerolab/v1\nkind: Job\nname: wc\ngroups:\n  - {name: map, count: 3, program: map, \
                   connect: [reduce]}\n  - {name: reduce, program: reduce}\n";

/// `zerolab graph lab.yaml ARGS...` in a temp dir holding the cluster, the job and
/// stand-ins for its programs (nothing runs them).
fn graph(args: &[&str]) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("lab.yaml", CLUSTER), ("job.yaml", JOB), ("map", ""), ("reduce", "")] {
        fs::write(dir.path().join(name), text).unwrap();
    }
    let run = zerolab_in(dir.path(), &[&["graph", "lab.yaml", "--lab-root", "labs"][..], args].concat());
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:#?}");
    (dir, run)
}

fn bridge() -> String {
    zerolab::provider::netns::Names::new("demo").bridge()
}

#[test]
fn mermaid_is_the_default_and_draws_placement_and_channels() {
    let (_dir, run) = graph(&["job.yaml"]);
    let want = format!(
        "flowchart TB\n\
         %% zerolab graph: lab demo, job wc\n  \
         net{{{{\"netns bridge {}, 10.77.198.0/24, host 10.77.198.1\"}}}}\n  \
         subgraph s0 [\"node-1\"]\n    \
         n0[\"node-1<br/>10.77.198.2<br/>zone=a\"]\n    \
         i0([\"map-1\"])\n    \
         i3([\"reduce\"])\n  \
         end\n  \
         subgraph s1 [\"node-2\"]\n    \
         n1[\"node-2<br/>10.77.198.3<br/>zone=a\"]\n    \
         i1([\"map-2\"])\n  \
         end\n  \
         subgraph s2 [\"edge\"]\n    \
         n2[\"edge<br/>10.77.198.4<br/>role=gw<br/>zone=b\"]\n    \
         i2([\"map-3\"])\n  \
         end\n  \
         net --- n0\n  \
         net --- n1\n  \
         net --- n2\n  \
         i0 -->|pipe| i3\n  \
         i1 -. tcp .-> i3\n  \
         i2 -. tcp .-> i3\n",
        bridge()
    );
    assert_eq!(run.stdout, want);
    let (_dir, lab_only) = graph(&["--format", "mermaid"]);
    assert_eq!(
        lab_only.stdout,
        format!(
            "flowchart TB\n\
             %% zerolab graph: lab demo\n  \
             net{{{{\"netns bridge {}, 10.77.198.0/24, host 10.77.198.1\"}}}}\n  \
             n0[\"node-1<br/>10.77.198.2<br/>zone=a\"]\n  \
             n1[\"node-2<br/>10.77.198.3<br/>zone=a\"]\n  \
             n2[\"edge<br/>10.77.198.4<br/>role=gw<br/>zone=b\"]\n  \
             net --- n0\n  \
             net --- n1\n  \
             net --- n2\n",
            bridge()
        )
    );
}

#[test]
fn dot_draws_the_same_and_graphviz_renders_it() {
    let (dir, run) = graph(&["job.yaml", "--format", "dot"]);
    let want = format!(
        "// zerolab graph: lab demo, job wc\n\
         digraph \"demo\" {{\n  \
         rankdir=TB;\n  \
         node [fontname=\"sans-serif\", shape=box];\n  \
         net [shape=hexagon, label=\"netns bridge {}, 10.77.198.0/24, host 10.77.198.1\"];\n  \
         subgraph cluster_0 {{\n    \
         label=\"node-1\";\n    \
         n0 [label=\"node-1\\n10.77.198.2\\nzone=a\"];\n    \
         i0 [shape=box, style=rounded, label=\"map-1\"];\n    \
         i3 [shape=box, style=rounded, label=\"reduce\"];\n  \
         }}\n  \
         subgraph cluster_1 {{\n    \
         label=\"node-2\";\n    \
         n1 [label=\"node-2\\n10.77.198.3\\nzone=a\"];\n    \
         i1 [shape=box, style=rounded, label=\"map-2\"];\n  \
         }}\n  \
         subgraph cluster_2 {{\n    \
         label=\"edge\";\n    \
         n2 [label=\"edge\\n10.77.198.4\\nrole=gw\\nzone=b\"];\n    \
         i2 [shape=box, style=rounded, label=\"map-3\"];\n  \
         }}\n  \
         net -> n0 [dir=none];\n  \
         net -> n1 [dir=none];\n  \
         net -> n2 [dir=none];\n  \
         i0 -> i3 [label=\"pipe\"];\n  \
         i1 -> i3 [label=\"tcp\", style=dashed];\n  \
         i2 -> i3 [label=\"tcp\", style=dashed];\n\
         }}\n",
        bridge()
    );
    assert_eq!(run.stdout, want);
    let Some(dot) = program("graph --format dot rendered", "dot", "graphviz") else {
        return;
    };
    let file = dir.path().join("lab.dot");
    fs::write(&file, &run.stdout).unwrap();
    let output = Command::new(dot).arg("-Tsvg").arg(&file).output().unwrap();
    assert!(output.status.success() && output.stderr.is_empty(), "{output:#?}");
    // Graphviz writes `-` as `&#45;` in SVG text.
    let svg = String::from_utf8(output.stdout).unwrap().replace("&#45;", "-");
    for name in ["node-1", "edge", "map-3", "reduce"] {
        assert!(svg.contains(&format!(">{name}</text>")), "{name} drawn: {svg}");
    }
}

#[test]
fn html_is_one_well_formed_page_naming_every_node_and_instance() {
    let (dir, run) = graph(&["job.yaml", "--format", "html"]);
    let page = &run.stdout;
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">\n"), "{page}");
    well_formed(page.strip_prefix("<!DOCTYPE html>\n").unwrap());
    for name in ["node-1", "node-2", "edge", "map-1", "map-2", "map-3", "reduce", "10.77.198.4", "role=gw"] {
        assert!(page.contains(&format!(">{name}<")), "{name} missing:\n{page}");
    }
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="), "self-contained: {page}");

    // In a real browser, offline: the SVG is laid out with every node in it.
    let Some(chromium) = program("graph --format html in a browser", "chromium", "chromium") else {
        return;
    };
    let file = dir.path().join("lab.html");
    fs::write(&file, page).unwrap();
    let profile = dir.path().join("profile");
    let output = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:#?}");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert_eq!(dom.matches("<g class=\"node\"").count(), 3, "{dom}");
    assert!(dom.contains("<svg") && dom.contains(">reduce</text>"), "{dom}");
}

/// Asserts that `xml` nests every element properly (void HTML elements written as
/// `<meta/>`), so the page parses as XML as well as HTML.
fn well_formed(xml: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map(|end| start + end).unwrap_or_else(|| panic!("unclosed `<` in {xml}"));
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing </{name}> in {xml}");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().unwrap());
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "left open: {open:?}");
}
