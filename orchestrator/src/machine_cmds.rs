//! The commands on a lab's machines (`power`, `shelve`, `unshelve`): call
//! [`zerolab::machines`], print one line per node (`NODE: what was done` on stdout, or
//! `NODE: why not` on stderr), exit 1 when a node failed.

use std::io;
use std::path::{Path, PathBuf};

use zerolab::cluster::Cluster;
use zerolab::machines::NodeOutcome;
use zerolab::provider::ShelveMode;

use crate::cli::PowerVerb;
use crate::{print_line, runtime, EXIT_INVALID, EXIT_OK};

/// `zerolab power ACTION FILE [NODE]...`.
pub(crate) fn power(cluster: &Cluster, lab_root: &Path, verb: PowerVerb, nodes: &[String]) -> anyhow::Result<u8> {
    use zerolab::provider::pxe::power::PowerAction;
    let action = match verb {
        PowerVerb::On => Some(PowerAction::On),
        PowerVerb::Off => Some(PowerAction::Off),
        PowerVerb::Cycle => Some(PowerAction::Cycle),
        PowerVerb::Status => None,
    };
    Ok(report(runtime()?.block_on(zerolab::machines::power(lab_root, cluster, action, nodes))?))
}

/// `zerolab shelve [--offload] FILE [NODE]...`.
pub(crate) fn shelve(cluster: &Cluster, lab_root: &Path, offload: bool, nodes: &[String]) -> anyhow::Result<u8> {
    let mode = if offload { ShelveMode::Offloaded } else { ShelveMode::Frozen };
    Ok(report(runtime()?.block_on(zerolab::machines::shelve(lab_root, cluster, nodes, mode))?))
}

/// `zerolab unshelve FILE [NODE]...`.
pub(crate) fn unshelve(
    cluster: &Cluster,
    lab_root: &Path,
    agent: Option<PathBuf>,
    nodes: &[String],
) -> anyhow::Result<u8> {
    let agent = agent
        .or_else(zerolab::up::default_agent_path)
        .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))?;
    Ok(report(runtime()?.block_on(zerolab::machines::unshelve(lab_root, cluster, nodes, &agent))?))
}

/// Prints each node's outcome on its own line; the exit code.
fn report(outcomes: Vec<NodeOutcome>) -> u8 {
    let mut failed = false;
    for (node, outcome) in outcomes {
        match outcome {
            Ok(done) => print_line(&mut io::stdout().lock(), &format!("{node}: {done}")),
            Err(error) => {
                failed = true;
                print_line(&mut io::stderr().lock(), &format!("{node}: {error}"));
            }
        }
    }
    if failed {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}
