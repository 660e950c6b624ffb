//! `zerolab graph`: a drawing of a lab, and of a job placed on it, made from the files
//! alone (as containerlab's `graph` draws its labs).
//!
//! [`Drawing::new`] gathers what is drawn: the lab's network (its provider, subnet,
//! host address and, for `netns`, its bridge), every node (address, labels, and its
//! state when the caller read the lab's records), and with a job where each instance is
//! placed and every channel between instances (a pipe when both ends share a node, TCP
//! between agents otherwise). The renderers only lay it out: [`mermaid`] and [`dot`]
//! as text for other tools, [`html`] as one self-contained page whose picture is an SVG
//! drawn here (no script, no stylesheet or font from the network: the page opens
//! offline, and what it shows is what the golden tests of the text formats check).
//!
//! Design: the placement drawn is the one `zerolab run` uses (`Job::check_placement`),
//! so the picture of a job is where its instances will run.

mod html;
mod text;

pub use self::html::html;
pub use self::text::{dot, mermaid};

use crate::cluster::Cluster;
use crate::job::{Job, Placement};

/// What a graph shows, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawing {
    /// The lab's name.
    pub lab: String,
    /// What joins the nodes, in a few words (`netns bridge zl1a2b3cb, 10.77.0.0/24,
    /// host 10.77.0.1`).
    pub network: String,
    /// Every node, in file order.
    pub nodes: Vec<DrawnNode>,
    /// The job drawn on the lab, when one was given.
    pub job: Option<DrawnJob>,
}

/// One node of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnNode {
    /// Its name.
    pub name: String,
    /// Where it is reached.
    pub address: String,
    /// Its labels as `key=value`, sorted.
    pub labels: Vec<String>,
    /// Its state as the lab records it (`ready`, `failed`...), when known.
    pub state: Option<String>,
    /// The job's instances placed on it, by index in [`DrawnJob::instances`].
    pub instances: Vec<usize>,
}

/// A job placed on the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnJob {
    /// The job's name.
    pub name: String,
    /// Every instance's name, in the job's order.
    pub instances: Vec<String>,
    /// Every channel, in the job's order.
    pub channels: Vec<DrawnChannel>,
}

/// One channel between two instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawnChannel {
    /// The writer, by index in [`DrawnJob::instances`].
    pub from: usize,
    /// The reader, likewise.
    pub to: usize,
    /// Both ends on one node: a pipe; otherwise TCP between the nodes' agents.
    pub local: bool,
}

impl Drawing {
    /// The drawing of `cluster`, with `job` placed as `placement` says when given; `state`
    /// gives a node's recorded state by name (`None` when the lab is not up or has no
    /// record of the node).
    pub fn new(cluster: &Cluster, job: Option<(&Job, &Placement)>, state: impl Fn(&str) -> Option<String>) -> Drawing {
        let nodes = cluster
            .nodes()
            .iter()
            .map(|node| DrawnNode {
                name: node.name.clone(),
                address: node.address.to_string(),
                labels: node.labels.iter().map(|(key, value)| format!("{key}={value}")).collect(),
                state: state(&node.name),
                instances: job.map(|(_, placement)| placement.instances_on(&node.name)).unwrap_or_default(),
            })
            .collect();
        let job = job.map(|(job, placement)| DrawnJob {
            name: job.name().to_owned(),
            instances: job.instances().iter().map(|instance| instance.name.clone()).collect(),
            channels: job
                .edges()
                .iter()
                .map(|edge| DrawnChannel { from: edge.from, to: edge.to, local: placement.is_local(edge) })
                .collect(),
        });
        Drawing { lab: cluster.name().to_owned(), network: network(cluster), nodes, job }
    }

    /// The title: `lab demo` or `lab demo, job wordcount`.
    pub fn title(&self) -> String {
        match &self.job {
            Some(job) => format!("lab {}, job {}", self.lab, job.name),
            None => format!("lab {}", self.lab),
        }
    }
}

/// What joins `cluster`'s nodes: the provider, the bridge a `netns` lab makes, the
/// subnet and the host's address on it, as far as the cluster file says.
fn network(cluster: &Cluster) -> String {
    let provider = cluster.provider();
    let mut parts = vec![match provider.name() {
        "netns" => format!("netns bridge {}", crate::provider::netns::Names::new(cluster.name()).bridge()),
        name => format!("{name} network"),
    }];
    if let Some(subnet) = cluster.subnet() {
        parts.push(subnet.to_string());
    }
    if let Some(host) = cluster.host_address() {
        parts.push(format!("host {host}"));
    }
    parts.join(", ")
}

/// The lines a node's box shows: name, address, labels, state.
fn node_lines(node: &DrawnNode) -> Vec<String> {
    let mut lines = vec![node.name.clone(), node.address.clone()];
    lines.extend(node.labels.iter().cloned());
    lines.extend(node.state.iter().map(|state| format!("state: {state}")));
    lines
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A two-node lab with a three-instance job: two writers on node-1 into a reader,
    /// one channel a pipe, one TCP.
    pub(crate) fn drawing(states: bool) -> Drawing {
        let node = |name: &str, address: &str, labels: &[&str], instances: Vec<usize>, state: &str| DrawnNode {
            name: name.into(),
            address: address.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            state: states.then(|| state.into()),
            instances,
        };
        Drawing {
            lab: "demo".into(),
            network: "netns bridge zlabcdefb, 10.77.0.0/24, host 10.77.0.1".into(),
            nodes: vec![
                node("node-1", "10.77.0.2", &["zone=a"], vec![0, 2], "ready"),
                node("node-2", "10.77.0.3", &[], vec![1], "failed"),
            ],
            job: Some(DrawnJob {
                name: "wc".into(),
                instances: vec!["map-1".into(), "map-2".into(), "reduce".into()],
                channels: vec![
                    DrawnChannel { from: 0, to: 2, local: true },
                    DrawnChannel { from: 1, to: 2, local: false },
                ],
            }),
        }
    }

    #[test]
    fn a_cluster_and_job_become_nodes_instances_and_channels() {
        let cluster = crate::cluster::from_str(
            "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: netns\nnetwork: {subnet: 10.77.0.0/24}\nnodes:\n  \
             - {name: node, count: 2, labels: {zone: a}}\n",
            "demo.yaml",
        )
        .unwrap();
        let job = crate::job::Job::from_str(
            "apiVersion: zerolab/v1\nkind: Job\nname: wc\ngroups:\n  - {name: map, count: 2, program: /bin/true, \
             connect: [reduce]}\n  - {name: reduce, program: /bin/true}\n",
            "job.yaml",
        )
        .unwrap();
        let placement = job.check_placement(&cluster).unwrap();
        let drawing =
            Drawing::new(&cluster, Some((&job, &placement)), |node| (node == "node-1").then(|| "ready".into()));
        let bridge = crate::provider::netns::Names::new("demo").bridge();
        assert_eq!(drawing.network, format!("netns bridge {bridge}, 10.77.0.0/24, host 10.77.0.1"));
        assert_eq!(drawing.title(), "lab demo, job wc");
        let names: Vec<(&str, Option<&str>, &[usize])> =
            drawing.nodes.iter().map(|n| (n.name.as_str(), n.state.as_deref(), n.instances.as_slice())).collect();
        assert_eq!(names, [("node-1", Some("ready"), &[0, 2][..]), ("node-2", None, &[1][..])]);
        let job = drawing.job.unwrap();
        assert_eq!(job.instances, ["map-1", "map-2", "reduce"]);
        assert_eq!(
            job.channels,
            [DrawnChannel { from: 0, to: 2, local: true }, DrawnChannel { from: 1, to: 2, local: false }]
        );
        assert_eq!(node_lines(&drawing.nodes[0]), ["node-1", "10.77.0.2", "zone=a", "state: ready"]);
    }
}
