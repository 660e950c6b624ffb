//! Reading a job's text into a [`JobDraft`]: a YAML job file through the cluster file's
//! reader ([`DocumentKind::Job`]), or a ZeroCloud JSON description, told apart by its
//! first character (`[`).
//!
//! JSON is first parsed by serde_json, so that malformed JSON gets JSON's own message and
//! position; a description that parses is then read into its schema by the YAML reader,
//! which locates fields and suggests names the same way for both formats.

use crate::document::read::{read_document, read_typed};
use crate::document::DocumentKind;
use crate::document::{Checker, Document, Location};

use super::draft::JobDraft;
use super::problem::Problem;
use super::schema::JobFile;
use super::zerocloud::{self, ZeroCloudGroup};

/// Reads `text` (named `file_name`) into a draft. Reading stops at the first problem,
/// returned as the error; problems found after reading go to `check`.
pub(crate) fn read(
    text: &str,
    file_name: &str,
    document: &Document,
    check: &mut Checker<'_, Problem>,
) -> Result<JobDraft, (Location, Problem)> {
    if !zerocloud::is_zerocloud(text) {
        let file: JobFile = read_document(document, DocumentKind::Job).map_err(read_problem)?;
        return Ok(file.into_draft());
    }
    if let Err(err) = serde_json::from_str::<serde_json::Value>(text) {
        let location = Location { line: err.line().max(1), column: err.column().max(1) };
        let message = err.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        return Err((location, Problem::JsonSyntax { message }));
    }
    let groups: Vec<ZeroCloudGroup> = read_typed(document, DocumentKind::Job).map_err(read_problem)?;
    Ok(zerocloud::into_draft(groups, zerocloud::job_name(file_name), check))
}

fn read_problem((location, problem): (Location, crate::document::ReadProblem)) -> (Location, Problem) {
    (location, Problem::Read(problem))
}
