//! A boot network of namespaces for one test: a server namespace `p3<tag>s` holding the
//! bridge `p3br<tag>` (10.99.13.1/24, the boot server's side) and one namespace per
//! client, `p3<tag>c<n>`, whose `eth0` (a veth on the bridge) carries the MAC the test
//! gives it. Every test has its own tag, so tests running at once share nothing but the
//! subnet, each in its own namespaces. Dropping it kills what it started and deletes the
//! namespaces (and with them the veths and the bridge).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The server's address on every test network.
pub const SERVER: &str = "10.99.13.1";

pub struct Net {
    pub tag: String,
    pub server_ns: String,
    pub bridge: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    clients: usize,
}

/// Runs `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Net {
    pub fn new(tag: &str) -> Net {
        let server_ns = format!("p3{tag}s");
        let bridge = format!("p3br{tag}");
        // A namespace left by a crashed run of the same test goes first.
        let _ = Command::new("ip").args(["netns", "del", &server_ns]).output();
        ip(&["netns", "add", &server_ns]);
        let mut net =
            Net { tag: tag.to_owned(), server_ns, bridge, namespaces: Vec::new(), children: Vec::new(), clients: 0 };
        net.namespaces.push(net.server_ns.clone());
        let (ns, br) = (net.server_ns.clone(), net.bridge.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "add", &br, "type", "bridge"]);
        ip(&["-n", &ns, "addr", "add", &format!("{SERVER}/24"), "dev", &br]);
        ip(&["-n", &ns, "link", "set", &br, "up"]);
        net
    }

    /// A client namespace whose `eth0` has `mac` (and `address`/24 when given).
    pub fn client(&mut self, mac: &str, address: Option<&str>) -> String {
        self.clients += 1;
        let ns = format!("p3{}c{}", self.tag, self.clients);
        let veth = format!("v{}", self.clients);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &self.server_ns, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["-n", &self.server_ns, "link", "set", &veth, "master", &self.bridge, "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "address", mac]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        if let Some(address) = address {
            self.address(&ns, address);
        }
        ns
    }

    /// Gives `ns`'s eth0 `address`/24.
    pub fn address(&self, ns: &str, address: &str) {
        ip(&["-n", ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
    }

    /// Runs `program args` in `ns`.
    pub fn run(&self, ns: &str, program: &str, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", ns, program]).args(args).output().expect("ip netns exec runs")
    }

    /// Starts `program args` in `ns`, killed when the network is dropped.
    pub fn spawn(&mut self, ns: &str, program: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec runs");
        self.children.push(child);
    }

    /// A script that runs the zerolab binary in the server namespace: what
    /// `serve::start` is given as the program, so the boot server lives there.
    pub fn server_program(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("zerolab-in-netns");
        let script =
            format!("#!/bin/sh\nexec ip netns exec {} {} \"$@\"\n", self.server_ns, env!("CARGO_BIN_EXE_zerolab"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The IPv6 addresses of the bridge.
    pub fn bridge_v6(&self) -> String {
        let out = Command::new("ip").args(["-n", &self.server_ns, "-6", "addr", "show", "dev", &self.bridge]).output();
        String::from_utf8_lossy(&out.expect("ip runs").stdout).into_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
