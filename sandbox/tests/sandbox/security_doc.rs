//! `docs/security.md` in step with the code: the jail's steps in its table are
//! `jail::Step`'s, in order; the channel devices and ordinary file systems it
//! lists are the ones `channel::open_path` accepts; and every test module it
//! cites for an attack exists. (The allowed-calls table is
//! checked against the seccomp policy in `src/jail/seccomp_tests.rs`.)

use std::collections::BTreeSet;
use std::path::Path;

use zerolab_sandbox::channel::{DEVICES, ORDINARY};
use zerolab_sandbox::jail::Step;

const DOC: &str = include_str!("../../../docs/security.md");

/// The text of the section whose heading starts with `heading`.
fn section(heading: &str) -> &'static str {
    let start = DOC.find(heading).unwrap_or_else(|| panic!("docs/security.md has no section {heading:?}"));
    let rest = &DOC[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The first two cells of each row of the table in `section` whose header starts with
/// `header`.
fn table(section: &str, header: &str) -> Vec<(String, String)> {
    let table = section.split("\n\n").find(|b| b.trim_start().starts_with(header)).expect("the table");
    table
        .lines()
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn the_documented_channel_devices_are_the_accepted_ones() {
    let documented: BTreeSet<(String, String)> = table(section("## Layer 1"), "| device").into_iter().collect();
    let accepted: BTreeSet<(String, String)> =
        DEVICES.iter().map(|(major, minor, name)| (name.to_string(), format!("{major}:{minor}"))).collect();
    assert_eq!(documented, accepted);
}

#[test]
fn the_documented_ordinary_file_systems_are_the_accepted_ones() {
    let layer = section("## Layer 1");
    let para = layer.split("\n\n").find(|b| b.starts_with("Ordinary file systems")).expect("the file-system list");
    let list = para.rsplit("hole):").next().expect("list after the colon");
    let documented: BTreeSet<String> =
        list.trim().trim_end_matches('.').split(',').map(|s| s.split_whitespace().collect::<String>()).collect();
    let accepted: BTreeSet<String> = ORDINARY.iter().map(|(_, name)| name.to_string()).collect();
    assert_eq!(documented, accepted);
}

#[test]
fn every_attack_test_the_doc_cites_exists() {
    let intro = &DOC[..DOC.find("## Threat model").expect("threat model")];
    let cited = intro.split("`sandbox/tests/sandbox/`:").nth(1).expect("the list of test modules");
    let cited = &cited[..cited.find(';').expect("end of the list")];
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox");
    let mut n = 0;
    for module in cited.split(',').map(|m| m.trim().trim_matches('`')) {
        assert!(
            here.join(format!("{module}.rs")).is_file(),
            "docs/security.md cites a test module {module} that does not exist"
        );
        n += 1;
    }
    assert!(n >= 8, "only {n} modules cited");
}

#[test]
fn the_documented_jail_steps_are_the_codes_in_order() {
    let rows = table(section("## Layer 2"), "| # | step");
    assert_eq!(
        rows.len(),
        Step::ALL.len(),
        "docs/security.md lists {} steps, the code {}",
        rows.len(),
        Step::ALL.len()
    );
    for ((number, text), step) in rows.iter().zip(Step::ALL) {
        assert_eq!(number, &step.number().to_string(), "row {number:?} is {step:?} in the code");
        assert!(text.starts_with(step.title()), "row {number} should begin {:?}, but reads {text:?}", step.title());
    }
}
