//! The boot services of a `pxe` lab: what makes a bare machine on the boot network come
//! up into zerolab's live system, an installer, or its own disk.
//!
//! - [`plan`]: the [`BootPlan`](plan::BootPlan), the one input (`LAB/pxe/plan.json`).
//! - [`render`]: every boot file from the `pxe-*.j2` templates (dnsmasq.conf, per-node
//!   iPXE scripts, pxelinux menus, preseeds) and the first-stage loaders copied from
//!   Debian's packages.
//! - [`server`]: the boot server daemon (`zerolab pxe-serve PLAN`): dnsmasq as its child
//!   (DHCP, TFTP), HTTP for scripts, kernels, images and per-node metadata, and the
//!   progress events; [`serve`] starts, finds and stops it.
//! - [`state`]: which install nodes are installed (`state.json`, under flock).
//! - [`events`]: the boot progress log (`events.jsonl`) and each node's last step.
//! - [`cpio`]: the agent packed as a second initrd.
//!
//! The boot chain, the endpoints and the security of the metadata routes are described
//! in `docs/pxe.md`.

pub mod cpio;
pub mod events;
pub mod plan;
pub mod render;
pub mod serve;
pub mod server;
pub mod state;

mod dnsmasq;

/// A plan of three nodes on 10.99.13.0/24 in `dir` (live, image install, preseed
/// install; the last one with a disk), for the tests.
#[cfg(test)]
pub(crate) fn sample_plan(dir: &std::path::Path) -> plan::BootPlan {
    use plan::*;
    use std::net::Ipv4Addr;
    let node = |n: u8, boot, disk: Option<&str>| BootNode {
        name: format!("n{n}"),
        mac: format!("52:54:00:99:13:{n:02x}").parse().expect("a valid mac"),
        address: Ipv4Addr::new(10, 99, 13, 10 + n),
        token: format!("{:032x}", u128::from(n) * 0x0123_4567_89ab_cdef),
        boot,
        disk: disk.map(str::to_owned),
    };
    BootPlan {
        lab: "p3lab".into(),
        dir: dir.to_owned(),
        interface: "p3br0".into(),
        server: Ipv4Addr::new(10, 99, 13, 1),
        prefix: 24,
        subnet: Ipv4Addr::new(10, 99, 13, 0),
        http_port: 18013,
        dhcp: DhcpMode::Server,
        loader: Loader::Ipxe,
        authorized_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxe lab@p3lab".into(),
        live: LiveArtifacts { kernel: "/cache/live/vmlinuz".into(), initrd: "/cache/live/initrd.img".into() },
        image: Some("/cache/image/disk.img.gz".into()),
        installer: Some(InstallerArtifacts {
            kernel: "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux".into(),
            initrd: "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz".into(),
            mirror: "http://deb.example.org/debian".into(),
            proxy: Some("http://10.99.13.1:3142/".into()),
        }),
        agent: Some("/build/zerolab-agent".into()),
        nodes: vec![
            node(1, Boot::Live, None),
            node(2, Boot::Install { route: Route::Image }, None),
            node(3, Boot::Install { route: Route::Preseed }, Some("/dev/vda")),
        ],
    }
}
