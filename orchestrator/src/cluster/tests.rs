//! Whole-file tests: each semantic check as one case with its exact message and
//! location, the expansion and allocation, per-provider defaults, and the examples.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::*;
use crate::provider::{netns, pxe, ssh, vagrant};

/// The lines `text` is rejected with (as `LINE:COL: message`), or `["ok"]`.
fn diagnose(text: &str) -> Vec<String> {
    match super::from_str(text, "t.yaml") {
        Ok(_) => vec!["ok".to_owned()],
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                assert_eq!(d.to_string(), format!("t.yaml:{}: {}", d.location, d.problem), "one-line format");
                format!("{}: {}", d.location, d.problem)
            })
            .collect(),
    }
}

/// A valid file up to and including `provider: PROVIDER`, in 4 lines; cases append.
fn head(provider: &str) -> String {
    format!("apiVersion: zerolab/v1\nkind: Cluster\nname: t\nprovider: {provider}\n")
}

const NAME_RULE: &str =
    "expected 1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-` (with count: \
                         optionally one `{n}` where the number goes)";
const LABEL_KEY_RULE: &str = "expected 1 to 63 characters of letters, digits, `.`, `_`, `-` and `/`, starting and \
                              ending with a letter or digit";

#[test]
fn reports_each_semantic_problem_at_its_place() {
    let netns = head("netns");
    let ssh = head("ssh");
    let pxe = format!("{}pxe: {{interface: eno2}}\n", head("pxe"));
    let vagrant = head("vagrant");
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "bad lab name",
            "apiVersion: zerolab/v1\nkind: Cluster\nname: My_Lab\nnodes: [{name: a}]\n".into(),
            vec!["3:7: invalid lab name `My_Lab`: 'M' is not allowed; expected 1 to 32 characters of a-z, 0-9 and \
                  `-`, not starting or ending with `-`"
                .into()],
        ),
        (
            "lab name too long",
            format!("apiVersion: zerolab/v1\nkind: Cluster\nname: {}\nnodes: [{{name: a}}]\n", "a".repeat(33)),
            vec!["3:7: invalid lab name `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`: it is 33 characters long, over 32; \
                  expected 1 to 32 characters of a-z, 0-9 and `-`, not starting or ending with `-`"
                .into()],
        ),
        ("no nodes", format!("{netns}nodes: []\n"), vec!["5:8: no nodes; expected at least one entry under `nodes`".into()]),
        (
            "bad node name",
            format!("{netns}nodes:\n  - name: web_1\n"),
            vec![format!("6:11: invalid node name `web_1`: '_' is not allowed; {NAME_RULE}")],
        ),
        (
            "pattern without count",
            format!("{netns}nodes:\n  - name: web{{n}}\n"),
            vec![format!("6:11: invalid node name `web{{n}}`: `{{n}}` needs `count`; {NAME_RULE}")],
        ),
        (
            "count 0",
            format!("{netns}nodes:\n  - name: node\n    count: 0\n"),
            vec!["7:12: count is 0; expected at least 1 (omit count for a single node)".into()],
        ),
        (
            "count too large",
            format!("{netns}nodes:\n  - name: node\n    count: 5000\n"),
            vec!["7:12: count 5000 is too large; expected at most 4096".into()],
        ),
        (
            "count with address",
            format!("{netns}nodes:\n  - name: node\n    count: 2\n    address: 10.77.0.9\n"),
            vec!["7:5: count cannot be combined with a fixed address; expected one entry per fixed address, or count \
                  alone"
                .into()],
        ),
        (
            "count with mac",
            format!("{pxe}nodes:\n  - name: node\n    count: 2\n    mac: 52:54:00:12:34:56\n"),
            vec!["8:5: count cannot be combined with mac; expected one entry per MAC address".into()],
        ),
        (
            "duplicate name after expansion",
            format!("{netns}nodes:\n  - name: node\n    count: 3\n  - name: node-2\n"),
            vec!["8:11: duplicate node name `node-2` (first at line 6); expected unique node names".into()],
        ),
        (
            "duplicate plain name",
            format!("{netns}nodes:\n  - {{name: a}}\n  - {{name: b}}\n  - {{name: a}}\n"),
            vec!["8:12: duplicate node name `a` (first at line 6); expected unique node names".into()],
        ),
        (
            "address outside the subnet",
            format!("{netns}nodes:\n  - name: a\n    address: 10.78.0.5\n"),
            vec!["7:14: address 10.78.0.5 is outside subnet 10.77.0.0/24; expected an address from 10.77.0.2 to \
                  10.77.0.254"
                .into()],
        ),
        (
            "address on the host side",
            format!("{netns}nodes:\n  - name: a\n    address: 10.77.0.1\n"),
            vec!["7:14: address 10.77.0.1 is the host side (the lab's own address) of subnet 10.77.0.0/24; expected \
                  an address from 10.77.0.2 to 10.77.0.254"
                .into()],
        ),
        (
            "network and broadcast addresses",
            format!(
                "{netns}network:\n  subnet: 192.168.5.0/28\nnodes:\n  - {{name: a, address: 192.168.5.0}}\n  \
                 - {{name: b, address: 192.168.5.15}}\n"
            ),
            vec![
                "8:24: address 192.168.5.0 is the network address of subnet 192.168.5.0/28; expected an address from \
                 192.168.5.2 to 192.168.5.14"
                    .into(),
                "9:24: address 192.168.5.15 is the broadcast address of subnet 192.168.5.0/28; expected an address \
                 from 192.168.5.2 to 192.168.5.14"
                    .into(),
            ],
        ),
        (
            "colliding fixed addresses",
            format!("{netns}nodes:\n  - {{name: a, address: 10.77.0.9}}\n  - {{name: b, address: 10.77.0.9}}\n"),
            vec!["7:24: address 10.77.0.9 is already used by the node at line 6; expected unique node addresses".into()],
        ),
        (
            "address that is not IPv4",
            format!("{netns}nodes:\n  - {{name: a, address: db.example.org}}\n"),
            vec!["6:24: invalid address `db.example.org`; expected an IPv4 address inside subnet 10.77.0.0/24".into()],
        ),
        (
            "subnet too small",
            format!("{netns}network:\n  subnet: 10.77.0.0/29\nnodes:\n  - name: node\n    count: 6\n"),
            vec!["6:11: 6 nodes do not fit in subnet 10.77.0.0/29, which has 5 node addresses; expected a larger \
                  subnet"
                .into()],
        ),
        (
            "default subnet too small",
            format!("{netns}nodes:\n  - name: node\n    count: 254\n"),
            vec!["5:1: 254 nodes do not fit in subnet 10.77.0.0/24, which has 253 node addresses; expected a larger \
                  subnet"
                .into()],
        ),
        (
            "subnet syntax",
            format!("{netns}network:\n  subnet: 10.77.0.0\nnodes: [{{name: a}}]\n"),
            vec!["6:11: invalid subnet `10.77.0.0`; expected an IPv4 network in CIDR form such as 10.77.0.0/24".into()],
        ),
        (
            "subnet with host bits",
            format!("{netns}network:\n  subnet: 10.77.0.1/24\nnodes: [{{name: a}}]\n"),
            vec!["6:11: subnet `10.77.0.1/24` has host bits set; expected its network address, 10.77.0.0/24".into()],
        ),
        (
            "subnet without room",
            format!("{netns}network:\n  subnet: 10.77.0.0/31\nnodes: [{{name: a}}]\n"),
            vec!["6:11: subnet `10.77.0.0/31` has prefix /31; expected a prefix of /30 or shorter".into()],
        ),
        (
            "public subnet",
            format!("{netns}network:\n  subnet: 8.8.8.0/24\nnodes: [{{name: a}}]\n"),
            vec!["6:11: subnet 8.8.8.0/24 is not a private range; expected a subnet inside 10.0.0.0/8, \
                  172.16.0.0/12 or 192.168.0.0/16"
                .into()],
        ),
        (
            "network with ssh",
            format!(
                "{ssh}network:\n  subnet: 10.77.0.0/24\ndefaults: {{user: u, key: k}}\nnodes: [{{name: a, address: h}}]\n"
            ),
            vec!["5:1: provider ssh has no lab network; expected an `address` on each node instead of `network`".into()],
        ),
        (
            "bad label key and value",
            format!("{netns}defaults:\n  labels: {{_pool: w}}\nnodes:\n  - name: a\n    labels: {{zone: 'a,b'}}\n"),
            vec![
                format!("6:12: invalid label key `_pool`: it starts or ends with '_'; {LABEL_KEY_RULE}"),
                "9:20: invalid value `a,b` for label `zone`: ',' is not allowed; expected up to 63 characters of \
                 letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit"
                    .into(),
            ],
        ),
        (
            "ssh node without address, user and key",
            format!("{ssh}nodes:\n  - name: a\n"),
            vec![
                "6:5: missing `address` for provider ssh; expected an IP address or host name on the node".into(),
                "6:5: missing `user` for provider ssh; expected a login user name on the node or in `defaults`".into(),
                "6:5: missing `key` for provider ssh; expected a private key path such as ~/.ssh/id_ed25519 on the \
                 node or in `defaults`"
                    .into(),
            ],
        ),
        (
            "ssh count without addresses",
            format!("{ssh}defaults: {{user: u, key: k}}\nnodes:\n  - {{name: a, count: 2}}\n"),
            vec!["7:5: missing `address` for provider ssh; expected an IP address or host name on the node".into()],
        ),
        (
            "ssh bad address and port 0",
            format!("{ssh}defaults: {{user: u, key: k, port: 0}}\nnodes:\n  - {{name: a, address: 10.0.0.300}}\n"),
            vec![
                "5:35: port 0 cannot be connected to; expected a port from 1 to 65535".into(),
                "7:24: invalid address `10.0.0.300`; expected an IP address or host name".into(),
            ],
        ),
        (
            "ssh hosts on one address and port",
            format!(
                "{ssh}defaults: {{user: u, key: k}}\nnodes:\n  - {{name: a, address: h1}}\n  \
                 - {{name: b, address: h1, port: 2222}}\n  - {{name: c, address: H1}}\n"
            ),
            vec!["9:24: address h1 is already used by the node at line 7; expected unique node addresses".into()],
        ),
        (
            "ssh empty key and bad user",
            format!("{ssh}defaults: {{user: -x, key: ''}}\nnodes: [{{name: a, address: h}}]\n"),
            vec![
                "5:18: invalid user `-x`: it starts or ends with '-'; expected a login name of letters, digits, `.`, \
                 `_` and `-`"
                    .into(),
                "5:27: `key` is empty; expected a private key path such as ~/.ssh/id_ed25519".into(),
            ],
        ),
        (
            "pxe node without mac",
            format!("{pxe}nodes:\n  - name: a\n"),
            vec!["7:5: missing `mac` for provider pxe; expected a MAC address such as 52:54:00:12:34:56 on the node"
                .into()],
        ),
        (
            "pxe bad and duplicate macs",
            format!(
                "{pxe}nodes:\n  - {{name: a, mac: '52:54:00:00:00:01'}}\n  - {{name: b, mac: 52-54-00-00-00-01}}\n  \
                 - {{name: c, mac: 01:00:5e:00:00:01}}\n"
            ),
            vec![
                "8:20: MAC address 52:54:00:00:00:01 is already used by the node at line 7; expected unique MAC \
                 addresses"
                    .into(),
                "9:20: invalid MAC address `01:00:5e:00:00:01`: it is a multicast address; expected six hex bytes \
                 such as 52:54:00:12:34:56"
                    .into(),
            ],
        ),
        (
            "fields of another provider",
            format!("{netns}defaults:\n  key: ~/.ssh/id\nnodes:\n  - name: a\n    mac: 52:54:00:12:34:56\n    port: 22\n"),
            vec![
                "6:3: field `key` does not apply to provider netns; expected it only with provider ssh".into(),
                "9:5: field `mac` does not apply to provider netns; expected it only with provider pxe".into(),
                "10:5: field `port` does not apply to provider netns; expected it only with provider ssh".into(),
            ],
        ),
        (
            "pxe without its section",
            format!("{}nodes:\n  - {{name: a, mac: 52:54:00:00:00:01}}\n", head("pxe")),
            vec!["1:1: provider pxe needs a `pxe` section; expected `pxe:` with at least `interface:`, the host \
                  interface on the boot network"
                .into()],
        ),
        (
            "pxe values",
            format!(
                "{}pxe: {{interface: eno2, dhcp: maybe, nat: eno2}}\nnodes:\n  - {{name: a, mac: 52:54:00:00:00:01, \
                 boot: net, power: {{qmp: /q, wol: {{}}}}}}\n",
                head("pxe")
            ),
            vec![
                "5:30: invalid dhcp `maybe`; expected server or proxy".into(),
                "5:42: invalid nat `eno2`; expected an uplink interface other than the boot interface".into(),
                "7:45: invalid boot `net`; expected live, install or local".into(),
                "7:57: invalid power `(more than one kind)`; expected exactly one of qmp, ipmi, wol or command".into(),
            ],
        ),
        (
            "vagrant limits",
            format!("{vagrant}nodes:\n  - {{name: a, memory_mb: 64, cpus: 0, box: 'my box'}}\n"),
            vec![
                "6:26: `memory_mb` is 64; expected at least 256".into(),
                "6:36: `cpus` is 0; expected at least 1".into(),
                "6:44: invalid box `my box`; expected a box name such as debian/bookworm64, without spaces".into(),
            ],
        ),
        (
            "vagrant cpus over the limit, from defaults",
            format!("{vagrant}defaults:\n  cpus: 65\nnodes: [{{name: a}}, {{name: b}}]\n"),
            vec!["6:9: `cpus` is 65; expected at most 64".into()],
        ),
        (
            "address field for every subnet provider",
            format!("{vagrant}nodes:\n  - {{name: a, address: 10.77.0.5}}\n"),
            vec!["6:24: address 10.77.0.5 is outside subnet 10.78.0.0/24; expected an address from 10.78.0.2 to \
                  10.78.0.254"
                .into()],
        ),
    ];
    let mut failures = Vec::new();
    for (what, text, want) in cases {
        let got = diagnose(&text);
        if got != want {
            failures.push(format!("{what}:\n{text}\n got: {got:#?}\nwant: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn reports_every_problem_in_file_order() {
    let text = "\
apiVersion: zerolab/v1
kind: Cluster
name: Lab
network:
  subnet: 10.77.0.0/24
nodes:
  - name: node
    count: 0
  - name: edge
    address: 10.77.1.5
  - name: edge
    labels: {'bad key': x}
";
    let got = diagnose(text);
    let lines: Vec<&str> = got.iter().map(|line| line.split(':').next().unwrap_or("")).collect();
    assert_eq!(lines, ["3", "8", "10", "11", "12"], "{got:#?}");
}

#[test]
fn expands_patterns_and_allocates_addresses_around_fixed_ones() {
    let text = "\
apiVersion: zerolab/v1
kind: Cluster
name: demo
network:
  subnet: 10.9.0.0/24
defaults:
  user: admin
  labels: {pool: workers, zone: x}
nodes:
  - name: node
    count: 3
    labels: {zone: a}
  - name: edge
    address: 10.9.0.3
  - name: r1-n{n}
    count: 2
";
    let cluster = super::from_str(text, "t.yaml").unwrap();
    assert_eq!(cluster.host_address(), Some(Ipv4Addr::new(10, 9, 0, 1)));
    let got: Vec<(String, String, usize)> =
        cluster.nodes().iter().map(|n| (n.name.clone(), n.address.to_string(), n.entry)).collect();
    let want = [
        ("node-1", "10.9.0.2", 0),
        ("node-2", "10.9.0.4", 0),
        ("node-3", "10.9.0.5", 0),
        ("edge", "10.9.0.3", 1),
        ("r1-n1", "10.9.0.6", 2),
        ("r1-n2", "10.9.0.7", 2),
    ];
    assert_eq!(got, want.map(|(n, a, e)| (n.to_owned(), a.to_owned(), e)));
    let node = cluster.node("node-2").unwrap();
    assert_eq!(node.user, "admin");
    assert_eq!(node.labels, Labels::from([("pool".into(), "workers".into()), ("zone".into(), "a".into())]));
    assert_eq!(cluster.node("edge").unwrap().labels["zone"], "x");
    assert_eq!(node.key, None);
}

#[test]
fn fills_a_small_subnet_exactly() {
    let text = format!("{}network: {{subnet: 10.0.0.0/29}}\nnodes: [{{name: n, count: 5}}]\n", head("netns"));
    let cluster = super::from_str(&text, "t.yaml").unwrap();
    let last = &cluster.nodes()[4];
    assert_eq!(
        (last.name.as_str(), last.address.clone()),
        ("n-5", NodeAddress::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6))))
    );
}

#[test]
fn applies_each_providers_defaults() {
    let vagrant = super::from_str(&format!("{}nodes: [{{name: v, cpus: 2}}]\n", head("vagrant")), "t").unwrap();
    let node = &vagrant.nodes()[0];
    assert_eq!((node.user.as_str(), node.address.to_string()), ("root", "10.78.0.2".to_owned()));
    let want = vagrant::Settings { box_name: vagrant::DEFAULT_BOX.into(), memory_mb: 1024, cpus: 2 };
    assert_eq!(node.settings.get::<vagrant::Settings>(), Some(&want));

    let text = format!("{}pxe: {{interface: eno2}}\nnodes: [{{name: p, mac: 52:54:00:AA:00:01}}]\n", head("pxe"));
    let pxe = super::from_str(&text, "t").unwrap();
    let node = &pxe.nodes()[0];
    assert_eq!((node.user.as_str(), node.address.to_string()), ("root", "10.79.0.2".to_owned()));
    let want =
        pxe::Settings { mac: "52:54:00:aa:00:01".parse().unwrap(), boot: pxe::Boot::Live, disk: None, power: None };
    assert_eq!(node.settings.get(), Some(&want));
    let lab = pxe.lab_settings::<pxe::PxeLab>().expect("the pxe section");
    assert_eq!((lab.interface.as_str(), lab.server.to_string(), lab.http_port), ("eno2", "10.79.0.1".to_owned(), 8067));
    assert_eq!(node.settings.get::<vagrant::Settings>(), None, "another provider's settings");

    let text = format!(
        "{}defaults: {{user: ops, key: ~/.ssh/k}}\nnodes: [{{name: s, address: fd00::7, port: 2222}}]\n",
        head("ssh")
    );
    let cluster = super::from_str(&text, "t").unwrap();
    let node = &cluster.nodes()[0];
    assert_eq!(cluster.subnet(), None);
    assert_eq!(node.address.to_string(), "fd00::7");
    assert_eq!(node.key, Some(PathBuf::from("~/.ssh/k")));
    assert_eq!((node.settings.get(), node.ssh_port()), (Some(&ssh::Settings { port: 2222 }), 2222));
}

#[test]
fn reads_crlf_and_a_byte_order_mark() {
    let text = "\u{feff}apiVersion: zerolab/v1\r\nkind: Cluster\r\nname: t\r\nnodes:\r\n  - name: A\r\n";
    assert_eq!(diagnose(text), [format!("5:11: invalid node name `A`: 'A' is not allowed; {NAME_RULE}")]);
}

#[test]
fn provider_defaults_to_netns() {
    let cluster = super::from_str("apiVersion: zerolab/v1\nkind: Cluster\nname: t\nnodes: [{name: a}]\n", "t").unwrap();
    assert_eq!((cluster.provider(), cluster.nodes()[0].ssh_port()), (netns::KIND, 22));
}

#[test]
fn the_examples_are_valid() {
    let examples = [
        ("netns-3.yaml", include_str!("../../../examples/netns-3.yaml"), netns::KIND),
        ("ssh.yaml", include_str!("../../../examples/ssh.yaml"), ssh::KIND),
        ("vagrant.yaml", include_str!("../../../examples/vagrant.yaml"), vagrant::KIND),
        ("pxe.yaml", include_str!("../../../examples/pxe.yaml"), pxe::KIND),
    ];
    for (name, text, provider) in examples {
        let cluster = super::from_str(text, name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cluster.provider(), provider, "{name}");
    }
    let lab = super::from_str(examples[0].1, "netns-3.yaml").unwrap();
    let names: Vec<&str> = lab.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-1", "node-2", "node-3"]);
}
