//! How a document's problems are reported: a [`Diagnostic`] is a problem at a
//! [`Location`] in a named file and prints as one line, `FILE:LINE:COL: what is
//! wrong; what is expected`; [`Diagnostics`] are every problem of one file, in file
//! order. `P` is the document's own problem type (a cluster file's, a job file's).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::location::Location;

/// A problem at a place in a file; prints as `FILE:LINE:COL: message`. `P` is the
/// document's problem type: a cluster file's [`cluster::Problem`](crate::cluster::Problem)
/// or a job file's [`job::Problem`](crate::job::Problem).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic<P> {
    /// The file name as given by the caller.
    pub file: String,
    /// Where the problem is.
    pub location: Location,
    /// What is wrong.
    pub problem: P,
}

impl<P: fmt::Display> fmt::Display for Diagnostic<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.location, self.problem)
    }
}

/// Every problem found in one file, in the order they appear in it; prints one
/// diagnostic a line. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics<P>(Vec<Diagnostic<P>>);

impl<P: PartialEq> Diagnostics<P> {
    /// Sorts `problems` by location, drops repeats (a bad value in `defaults` is found
    /// once per node), and names them with `file`. `None` when there are none.
    pub(crate) fn new(file: &str, mut problems: Vec<(Location, P)>) -> Option<Diagnostics<P>> {
        // A stable sort: problems at one place keep the order the checks found them in.
        problems.sort_by_key(|(location, _)| *location);
        let mut diagnostics: Vec<Diagnostic<P>> = Vec::with_capacity(problems.len());
        for (location, problem) in problems {
            let diagnostic = Diagnostic { file: file.to_owned(), location, problem };
            if !diagnostics.contains(&diagnostic) {
                diagnostics.push(diagnostic);
            }
        }
        (!diagnostics.is_empty()).then_some(Diagnostics(diagnostics))
    }
}

impl<P> Diagnostics<P> {
    /// One diagnostic.
    pub(crate) fn one(file: &str, location: Location, problem: P) -> Diagnostics<P> {
        Diagnostics(vec![Diagnostic { file: file.to_owned(), location, problem }])
    }

    /// The diagnostics, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic<P>> {
        self.0.iter()
    }

    /// How many there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: there is no empty `Diagnostics`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a, P> IntoIterator for &'a Diagnostics<P> {
    type Item = &'a Diagnostic<P>;
    type IntoIter = std::slice::Iter<'a, Diagnostic<P>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<P: fmt::Display> fmt::Display for Diagnostics<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            diagnostic.fmt(f)?;
        }
        Ok(())
    }
}

impl<P: fmt::Debug + fmt::Display> std::error::Error for Diagnostics<P> {}

/// Why a document could not be loaded from a path ([`Cluster::from_path`](crate::cluster::Cluster::from_path),
/// [`Job::from_path`](crate::job::Job::from_path)).
#[derive(Debug, thiserror::Error)]
pub enum LoadError<P: fmt::Debug + fmt::Display> {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file was read and is not a valid document.
    #[error(transparent)]
    Invalid(#[from] Diagnostics<P>),
}
