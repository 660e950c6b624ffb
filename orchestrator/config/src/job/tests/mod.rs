//! Whole-file tests of job files, by subject: [`checks`] (each check as one case with
//! its exact message and location), [`jobs`] (the expansion into instances and
//! channels, ZeroCloud's JSON, placement, and the examples).
//!
//! Every case runs in a temp dir holding dummy programs (`map`, `reduce`) and inputs
//! (`data/part-1..3`, `in.txt`) and an output directory (`out`), so the checks that look at the file system have
//! something to find; nothing is built.

mod checks;
mod jobs;

use std::path::PathBuf;

use super::*;

/// A temp dir with dummy programs and inputs, where job files are checked.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in ["map", "reduce", "in.txt", "data/part-1", "data/part-2", "data/part-3"] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path of `name` as messages show it.
    fn shown(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn job(&self, text: &str) -> Result<Job, Diagnostics<Problem>> {
        Job::from_str(text, &self.shown("job.yaml"))
    }

    /// The lines `text` is rejected with (as `LINE:COL: message`), or `["ok"]`.
    fn diagnose(&self, text: &str) -> Vec<String> {
        let file = self.shown("job.yaml");
        match self.job(text) {
            Ok(_) => vec!["ok".to_owned()],
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| {
                    assert_eq!(d.to_string(), format!("{file}:{}: {}", d.location, d.problem), "one-line format");
                    format!("{}: {}", d.location, d.problem)
                })
                .collect(),
        }
    }
}

/// The first 4 lines of a valid job file; cases append groups from line 5.
const HEAD: &str = "apiVersion: zerolab/v1\nkind: Job\nname: t\ngroups:\n";

/// HEAD and one group `a` running `map`, its fields written from line 7.
fn one(fields: &str) -> String {
    format!("{HEAD}  - name: a\n    program: map\n{fields}")
}

const NAME_RULE: &str = "expected 1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-`";
