//! Shelving's records and refusals, on a lab made in a temporary directory (an `ssh`
//! lab: it is up while its key pair exists, and its provider refuses to shelve). What a
//! provider does to its machines is tested with each provider.

use std::path::{Path, PathBuf};

use super::*;
use crate::exec::{self, Outcome};
use crate::lab::{Identity, NodeRecord};

const CLUSTER: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: shx\nprovider: ssh\n\
                       defaults: {key: /keys/id, user: root}\nnodes:\n  - {name: n1, address: 192.0.2.1}\n  \
                       - {name: n2, address: 192.0.2.2}\n  - {name: n3, address: 192.0.2.3}\n";

/// A lab that is up, its nodes recorded in `states`, brought up from `/labs/shx.yaml`.
fn lab_with(root: &Path, states: [NodeState; 3]) -> Cluster {
    let cluster = crate::cluster::from_str(CLUSTER, "shx.yaml").unwrap();
    let lab = Lab::open_or_create(root, "shx").unwrap();
    lab.save_identity(&Identity::new("shx", Some(Path::new("/labs/shx.yaml")), "ssh")).unwrap();
    let mut state = lab.load_state().unwrap();
    for (node, node_state) in cluster.nodes().iter().zip(states) {
        state.nodes.insert(node.name.clone(), NodeRecord::new(node.address.to_string(), node_state));
    }
    lab.save_state(&state).unwrap();
    cluster
}

fn recorded(root: &Path, node: &str) -> NodeState {
    Lab::at(root, "shx").unwrap().load_state().unwrap().nodes[node].state.clone()
}

fn agent(dir: &Path) -> PathBuf {
    let path = dir.join("zerolab-agent");
    std::fs::write(&path, b"agent").unwrap();
    path
}

#[tokio::test]
async fn a_provider_that_cannot_shelve_says_why_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let cluster = lab_with(root.path(), [NodeState::Ready, NodeState::Ready, NodeState::Ready]);
    let outcomes = shelve(root.path(), &cluster, &["n1".into()], ShelveMode::Offloaded).await.unwrap();
    let [(node, Err(line))] = &outcomes[..] else { panic!("{outcomes:?}") };
    assert_eq!(node, "n1");
    assert!(line.starts_with("shelve --offload is not supported by the ssh provider: it does not own"), "{line}");
    assert_eq!(recorded(root.path(), "n1"), NodeState::Ready);
    let outcomes = unshelve(root.path(), &cluster, &[], &agent(root.path())).await.unwrap();
    assert!(outcomes.iter().all(|(_, o)| o.as_deref() == Ok("ready (was not shelved)")), "{outcomes:?}");
}

#[tokio::test]
async fn only_ready_nodes_are_shelved_and_shelved_ones_are_left_as_they_are() {
    let root = tempfile::tempdir().unwrap();
    let failed = NodeState::Failed { cause: "x".into() };
    let cluster = lab_with(root.path(), [failed.clone(), NodeState::ShelvedOffloaded, NodeState::Shelved]);
    let outcomes = shelve(root.path(), &cluster, &[], ShelveMode::Frozen).await.unwrap();
    assert_eq!(
        outcomes,
        [
            ("n1".into(), Err("not ready (failed); only a ready node is shelved".into())),
            ("n2".into(), Ok("already shelved_offloaded".into())),
            ("n3".into(), Ok("already shelved".into())),
        ]
    );
    assert_eq!([recorded(root.path(), "n1"), recorded(root.path(), "n2")], [failed, NodeState::ShelvedOffloaded]);
    // A shelved node the provider cannot bring back stays shelved.
    let outcomes = unshelve(root.path(), &cluster, &["n1".into(), "n3".into()], &agent(root.path())).await.unwrap();
    assert_eq!(outcomes[0], ("n1".into(), Err("not shelved (failed); run `zerolab up`".into())));
    assert!(outcomes[1].1.as_ref().unwrap_err().starts_with("unshelve is not supported by the ssh provider"));
    assert_eq!(recorded(root.path(), "n3"), NodeState::Shelved);
}

#[tokio::test]
async fn shelving_refuses_a_lab_that_is_not_up_an_unknown_node_and_a_missing_agent() {
    let root = tempfile::tempdir().unwrap();
    let cluster = crate::cluster::from_str(CLUSTER, "shx.yaml").unwrap();
    let err = shelve(root.path(), &cluster, &[], ShelveMode::Frozen).await.unwrap_err();
    assert_eq!(err.to_string(), "lab shx is not up; run `zerolab up` first");
    lab_with(root.path(), [NodeState::Ready, NodeState::Ready, NodeState::Ready]);
    let err = shelve(root.path(), &cluster, &["n9".into()], ShelveMode::Frozen).await.unwrap_err();
    assert!(matches!(err, MachineError::UnknownNode(_)), "{err}");
    let err = unshelve(root.path(), &cluster, &[], &root.path().join("none")).await.unwrap_err();
    assert!(err.to_string().starts_with("agent binary "), "{err}");
}

#[tokio::test]
async fn commands_on_a_shelved_node_say_how_to_unshelve_it() {
    let root = tempfile::tempdir().unwrap();
    let cluster = lab_with(root.path(), [NodeState::Shelved, NodeState::ShelvedOffloaded, NodeState::Unreachable]);
    let handle = Lab::open(root.path(), &cluster).unwrap();
    for node in ["n1", "n2"] {
        let err = handle.ready(node).unwrap_err();
        assert_eq!(err.to_string(), format!("{node} is shelved: zerolab unshelve /labs/shx.yaml {node}"));
    }
    assert!(handle.ready("n3").unwrap_err().to_string().contains("not ready (unreachable"));
    // `exec` contacts no node that is not ready (so no keeper either), and says why.
    let runs = exec::exec(root.path(), &cluster, None, "true", Path::new("/nonexistent"), 4, |_| {}).await.unwrap();
    let lines: Vec<String> = runs
        .iter()
        .map(|run| match &run.outcome {
            Outcome::Failed(why) => format!("{}: {why}", run.node),
            Outcome::Ran(_) => panic!("{} ran", run.node),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "n1: n1 is shelved: zerolab unshelve /labs/shx.yaml n1",
            "n2: n2 is shelved: zerolab unshelve /labs/shx.yaml n2",
            "n3: not ready (run `zerolab up`)",
        ]
    );
    // `ssh` refuses it in the same words.
    let err = crate::login::command(root.path(), &cluster, "n2", &[]).unwrap_err();
    assert_eq!(err.to_string(), "n2 is shelved: zerolab unshelve /labs/shx.yaml n2");
}
