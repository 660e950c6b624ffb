//! The pxe boot server for real: `zerolab pxe-serve` started through
//! `boot::serve::start_with` in a network namespace, real dnsmasq answering real DHCP clients
//! (busybox `udhcpc`, and a PXE client's two exchanges from [`probe`]) on veths, and
//! curl fetching scripts, files and metadata from the nodes' own addresses.
//!
//! Needs root (namespaces), dnsmasq, busybox, curl and Debian's `ipxe` package (the
//! first stages the server copies); each test says on stderr why it is skipped when one
//! is missing. `cargo test --release -p zerolab --test pxe_boot`.

mod net;
mod probe;

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use net::{Net, SERVER};
use zerolab::provider::pxe::boot::plan::{Boot, BootNode, BootPlan, DhcpMode, LiveArtifacts, Loader, Route};
use zerolab::provider::pxe::boot::{events, serve, server, state};

const N1: &str = "52:54:00:99:13:01";
const N2: &str = "52:54:00:99:13:02";
const STRANGER: &str = "52:54:00:99:13:99";
const TOKEN1: &str = "0123456789abcdef0123456789abcdef";
const TOKEN2: &str = "fedcba9876543210fedcba9876543210";

/// Whether the tests can run here; says why not on stderr.
fn prerequisites(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {test} needs root for network namespaces (CI runs it as root)");
        return false;
    }
    for (path, package) in [
        ("/usr/sbin/dnsmasq", "dnsmasq-base"),
        ("/bin/busybox", "busybox-static"),
        ("/usr/bin/curl", "curl"),
        ("/usr/lib/ipxe/undionly.kpxe", "ipxe"),
    ] {
        if !Path::new(path).exists() {
            eprintln!("skipped: {test} needs {path} (Debian package {package}; scripts/setup installs it)");
            return false;
        }
    }
    true
}

/// A plan in `dir/pxe` for n1 (live, 10.99.13.11) and n2 (image install, .12), with
/// made-up artifacts and host keys.
fn plan(dir: &Path, tag: &str, dhcp: DhcpMode) -> BootPlan {
    let art = dir.join("artifacts");
    fs::create_dir_all(&art).unwrap();
    fs::write(art.join("vmlinuz"), b"a kernel").unwrap();
    fs::write(art.join("initrd.img"), vec![7u8; 300_000]).unwrap();
    fs::write(art.join("disk.img.gz"), b"an image").unwrap();
    fs::write(art.join("agent"), b"an agent").unwrap();
    let pxe = dir.join("pxe");
    for node in ["n1", "n2"] {
        let keys = pxe.join("keys").join(node);
        fs::create_dir_all(&keys).unwrap();
        fs::write(keys.join("ssh_host_ed25519_key"), format!("PRIVATE KEY OF {node}\n")).unwrap();
        fs::write(keys.join("ssh_host_ed25519_key.pub"), format!("ssh-ed25519 AAAA {node}\n")).unwrap();
    }
    let node = |name: &str, mac: &str, last: u8, token: &str, boot| BootNode {
        name: name.into(),
        mac: mac.parse().unwrap(),
        address: Ipv4Addr::new(10, 99, 13, last),
        token: token.into(),
        boot,
        disk: None,
    };
    let plan = BootPlan {
        lab: format!("p3{tag}"),
        dir: pxe.clone(),
        interface: format!("p3br{tag}"),
        server: SERVER.parse().unwrap(),
        prefix: 24,
        subnet: Ipv4Addr::new(10, 99, 13, 0),
        http_port: 18013,
        dhcp,
        loader: Loader::Ipxe,
        authorized_key: "ssh-ed25519 AAAAlab lab@p3".into(),
        live: LiveArtifacts { kernel: art.join("vmlinuz"), initrd: art.join("initrd.img") },
        image: Some(art.join("disk.img.gz")),
        installer: None,
        agent: Some(art.join("agent")),
        nodes: vec![
            node("n1", N1, 11, TOKEN1, Boot::Live),
            node("n2", N2, 12, TOKEN2, Boot::Install { route: Route::Image }),
        ],
    };
    plan.save(&pxe.join("plan.json")).unwrap();
    plan
}

/// Stops the boot server of a directory when dropped, also when a test fails.
struct Served(std::path::PathBuf);

impl Drop for Served {
    fn drop(&mut self) {
        serve::stop(&self.0);
    }
}

/// `udhcpc` in `ns` with `extra` options: the lease it was bound to, as
/// `ip=.. siaddr=.. boot_file=..`, or `None` when it got none.
fn udhcpc(net: &Net, dir: &Path, ns: &str, extra: &[&str]) -> Option<String> {
    let script = dir.join("udhcpc.sh");
    if !script.exists() {
        let text = "#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip siaddr=$siaddr boot_file=$boot_file\"\nexit 0\n";
        fs::write(&script, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = script.to_str().unwrap();
    let mut args = vec!["udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", script];
    args.extend_from_slice(extra);
    let out = net.run(ns, "/bin/busybox", &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().find(|line| line.starts_with("ip=")).map(str::to_owned)
}

/// `GET http://SERVER:18013/PATH` from `ns`: the status and the body.
fn get(net: &Net, ns: &str, path: &str) -> (u16, Vec<u8>) {
    let url = format!("http://{SERVER}:18013/{path}");
    let out = net.run(ns, "curl", &["-s", "-o", "-", "-w", "\n%{http_code}", &url]);
    let mut body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').expect("curl wrote the status");
    let status = String::from_utf8_lossy(&body[at + 1..]).trim().parse().expect("a status");
    body.truncate(at);
    (status, body)
}

fn text(response: (u16, Vec<u8>)) -> (u16, String) {
    (response.0, String::from_utf8_lossy(&response.1).into_owned())
}

/// The live children of `pid` named `name`.
fn children(pid: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        if comm == name && fields.get(1) == Some(&pid.to_string().as_str()) && fields[0] != "Z" {
            found.push(entry.file_name().to_string_lossy().parse().unwrap());
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

fn steps(dir: &Path, node: &str) -> Vec<String> {
    events::read(dir).unwrap().into_iter().filter(|e| e.node == node).map(|e| e.step).collect()
}

#[test]
fn server_mode_leases_scripts_metadata_and_a_clean_stop() {
    if !prerequisites("server_mode_leases_scripts_metadata_and_a_clean_stop") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut net = Net::new("a");
    let plan = plan(tmp.path(), "a", DhcpMode::Server);
    let (c1, c2, stranger) = (net.client(N1, None), net.client(N2, None), net.client(STRANGER, None));
    let handle = serve::start_with(&plan.dir.join("plan.json"), &net.server_program(tmp.path())).unwrap();
    let _served = Served(plan.dir.clone());
    assert!(serve::running(&plan.dir));
    let dnsmasq = children(handle.pid, "dnsmasq");
    assert_eq!(dnsmasq.len(), 1, "one dnsmasq, the server's child");
    assert!(net.bridge_v6().contains(&format!("{}/64", plan.ra_address())), "the RA address is on the bridge");

    // DHCP: the fixed lease with the first stage for each kind of client; nothing for a stranger.
    let firmware = udhcpc(&net, tmp.path(), &c1, &[]).expect("n1 gets a lease");
    assert_eq!(firmware, "ip=10.99.13.11 siaddr=10.99.13.1 boot_file=undionly.kpxe");
    let uefi = udhcpc(&net, tmp.path(), &c1, &["-x", "0x5d:0007"]).expect("n1 gets a lease as UEFI");
    assert_eq!(uefi, "ip=10.99.13.11 siaddr=10.99.13.1 boot_file=ipxe.efi");
    let ipxe = udhcpc(&net, tmp.path(), &c2, &["-x", "0x4d:69505845"]).expect("n2 gets a lease as iPXE");
    assert_eq!(
        ipxe,
        "ip=10.99.13.12 siaddr=10.99.13.1 boot_file=http://10.99.13.1:18013/v1/boot/52-54-00-99-13-02.ipxe"
    );
    assert_eq!(udhcpc(&net, tmp.path(), &stranger, &[]), None, "an unlisted MAC gets no offer");
    assert!(steps(&plan.dir, "n1").contains(&"offered".to_owned()));

    // HTTP, from the nodes' own addresses and from a stranger's.
    net.address(&c1, "10.99.13.11");
    net.address(&c2, "10.99.13.12");
    net.address(&stranger, "10.99.13.50");
    let (status, script) = text(get(&net, &c1, "v1/boot/52-54-00-99-13-01.ipxe"));
    assert_eq!(status, 200);
    assert!(
        script.starts_with("#!ipxe\n")
            && script.contains(&format!("zerolab.url=http://10.99.13.1:18013/v1/node/{TOKEN1} zerolab.mode=live")),
        "{script}"
    );
    assert_eq!(get(&net, &c1, "v1/files/initrd.img"), (200, vec![7u8; 300_000]));
    assert_eq!(get(&net, &c1, "v1/files/vmlinuz"), (200, b"a kernel".to_vec()));
    let (status, cpio) = get(&net, &c1, "v1/files/agent.cpio");
    assert!(status == 200 && cpio.starts_with(b"070701"), "{status}");
    assert_eq!(get(&net, &c1, "v1/files/nope").0, 404);
    assert_eq!(text(get(&net, &c1, &format!("v1/node/{TOKEN1}/hostname"))), (200, "n1\n".into()));
    assert_eq!(
        text(get(&net, &c1, &format!("v1/node/{TOKEN1}/authorized_keys"))),
        (200, "ssh-ed25519 AAAAlab lab@p3\n".into())
    );
    assert_eq!(
        text(get(&net, &c1, &format!("v1/node/{TOKEN1}/ssh_host_ed25519_key"))),
        (200, "PRIVATE KEY OF n1\n".into())
    );
    assert_eq!(get(&net, &c1, &format!("v1/node/{TOKEN1}/preseed.cfg")).0, 404, "no installer in this plan");
    assert_eq!(get(&net, &c1, "v1/node/00000000000000000000000000000000/hostname").0, 404, "a wrong token");
    assert_eq!(get(&net, &c2, &format!("v1/node/{TOKEN1}/ssh_host_ed25519_key")).0, 403, "another node's token");
    assert_eq!(get(&net, &stranger, &format!("v1/node/{TOKEN1}/hostname")).0, 403, "a stranger with the token");
    assert_eq!(get(&net, &stranger, "v1/boot/52-54-00-99-13-01.ipxe").0, 403);
    assert_eq!(get(&net, &stranger, "v1/files/vmlinuz").0, 403);
    assert_eq!(get(&net, &c2, "v1/boot/52-54-00-99-13-01.ipxe").0, 403, "n1's script to n2");
    assert_eq!(get(&net, &c1, "v1/boot/52-54-00-99-13-99.ipxe").0, 404);
    assert_eq!(text(get(&net, &c1, &format!("v1/node/{TOKEN1}/event/live"))), (200, "ok\n".into()));
    assert_eq!(get(&net, &c1, &format!("v1/node/{TOKEN1}/event/bogus")).0, 404);
    let n1: Vec<String> = steps(&plan.dir, "n1").into_iter().filter(|step| step != "offered").collect();
    assert_eq!(n1, ["script", "initrd", "kernel", "live"]);

    // The install node: the image install, `installed`, then `exit` until reinstalled.
    let (_, script) = text(get(&net, &c2, "v1/boot/52-54-00-99-13-02.ipxe"));
    assert!(
        script.contains("zerolab.mode=install zerolab.image=http://10.99.13.1:18013/v1/files/disk.img.gz"),
        "{script}"
    );
    assert_eq!(get(&net, &c2, "v1/files/disk.img.gz"), (200, b"an image".to_vec()));
    assert_eq!(get(&net, &c2, &format!("v1/node/{TOKEN2}/event/installed")).0, 200);
    assert!(state::load(&plan.dir).unwrap().installed("n2"));
    let (_, script) = text(get(&net, &c2, "v1/boot/52-54-00-99-13-02.ipxe"));
    assert!(script.ends_with("\nexit\n") && !script.contains("kernel"), "{script}");
    state::set_installed(&plan.dir, "n2", false).unwrap();
    let (_, script) = text(get(&net, &c2, "v1/boot/52-54-00-99-13-02.ipxe"));
    assert!(script.contains("zerolab.mode=install"), "{script}");
    let progress = events::progress(&plan.dir, &["n1", "n2"]).unwrap();
    assert_eq!(progress[0].step.as_deref(), Some("live"));
    assert_eq!(progress[1].step.as_deref(), Some("script"));

    // Stop: the server and its dnsmasq gone, its pid file and address too; twice is fine.
    serve::stop(&plan.dir);
    assert!(!serve::running(&plan.dir));
    assert!(!alive(handle.pid) && dnsmasq.iter().all(|&pid| !alive(pid)), "no process left");
    assert!(!plan.dir.join(server::PID_FILE).exists());
    let v6 = net.bridge_v6();
    assert!(!v6.contains(plan.ra_prefix().trim_end_matches(':')), "the RA addresses are gone: {v6}");
    serve::stop(&plan.dir);
}

#[test]
fn proxy_mode_answers_boot_only_beside_another_dhcp_server() {
    if !prerequisites("proxy_mode_answers_boot_only_beside_another_dhcp_server") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut net = Net::new("b");
    let plan = plan(tmp.path(), "b", DhcpMode::Proxy);
    // The network's own DHCP server, at .2, gives n1 its planned address and others any.
    let plain = net.client("52:54:00:99:13:f0", Some("10.99.13.2"));
    let leases = tmp.path().join("plain.leases");
    let leases = format!("--dhcp-leasefile={}", leases.display());
    let host = format!("--dhcp-host={N1},10.99.13.11");
    let plain_log = tmp.path().join("plain.log");
    let log = format!("--log-facility={}", plain_log.display());
    let args =
        ["--keep-in-foreground", "--port=0", "--interface=eth0", "--bind-interfaces", "--pid-file=", "--no-ping"];
    let args: Vec<&str> = args
        .into_iter()
        .chain(["--dhcp-range=10.99.13.100,10.99.13.150,1h", &host, &leases, &log, "--log-dhcp"])
        .collect();
    net.spawn(&plain, "/usr/sbin/dnsmasq", &args);
    let (c1, stranger) = (net.client(N1, None), net.client(STRANGER, None));
    let handle = serve::start_with(&plan.dir.join("plan.json"), &net.server_program(tmp.path())).unwrap();
    let _served = Served(plan.dir.clone());
    let plain_ip: Ipv4Addr = "10.99.13.2".parse().unwrap();
    let server: Ipv4Addr = SERVER.parse().unwrap();

    // A plain client gets its address from the plain server; the proxy gives no address.
    let lease = udhcpc(&net, tmp.path(), &c1, &[]).expect("n1 gets a lease from the plain server");
    assert!(lease.starts_with("ip=10.99.13.11 siaddr=") && lease.ends_with("boot_file="), "{lease}");

    // A PXE client: an address from the plain server, a menu from the proxy, and the
    // first stage (or, as iPXE, its script) from the proxy's boot service.
    let mac = |text: &str| -> [u8; 6] {
        let bytes: Vec<u8> = text.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        bytes.try_into().unwrap()
    };
    net.address(&c1, "10.99.13.11");
    for (ipxe, file) in
        [(false, "undionly.kpxe".to_owned()), (true, format!("http://{SERVER}:18013/v1/boot/52-54-00-99-13-01.ipxe"))]
    {
        let replies = probe::in_netns(&c1, || probe::discover(mac(N1), ipxe));
        let from_plain = replies.iter().find(|r| r.from.ip() == plain_ip).expect("the plain server answers");
        assert_eq!(from_plain.yiaddr, Ipv4Addr::new(10, 99, 13, 11));
        let proxy = replies.iter().find(|r| r.from.ip() == server).expect("the proxy answers a listed PXE client");
        assert_eq!(proxy.yiaddr, Ipv4Addr::UNSPECIFIED, "the proxy gives no address");
        let item = proxy.menu_item.expect("the proxy's answer holds a boot menu");
        let boot =
            probe::in_netns(&c1, || probe::boot_request(server, mac(N1), Ipv4Addr::new(10, 99, 13, 11), ipxe, item));
        let boot = boot.iter().find(|r| r.from.ip() == server).expect("the boot service answers");
        assert_eq!((boot.file.as_str(), boot.siaddr), (file.as_str(), server), "ipxe: {ipxe}");
    }
    // (The stranger has an address, as c1 has, so that the broadcast answers reach it.)
    net.address(&stranger, "10.99.13.50");
    let replies = probe::in_netns(&stranger, || probe::discover(mac(STRANGER), false));
    let said = || fs::read_to_string(&plain_log).unwrap_or_default();
    assert!(
        replies.iter().any(|r| r.from.ip() == plain_ip),
        "the plain server answers everyone: {replies:?} {}",
        said()
    );
    assert!(!replies.iter().any(|r| r.from.ip() == server), "the proxy ignores an unlisted MAC: {replies:?}");
    assert!(steps(&plan.dir, "n1").contains(&"offered".to_owned()), "a proxy answer is an offer");

    let dnsmasq = children(handle.pid, "dnsmasq");
    serve::stop(&plan.dir);
    assert!(!alive(handle.pid) && dnsmasq.iter().all(|&pid| !alive(pid)), "no process left");
}

#[test]
fn a_port_in_use_fails_start_with_the_reason() {
    if !prerequisites("a_port_in_use_fails_start_with_the_reason") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::new("c");
    let plan = plan(tmp.path(), "c", DhcpMode::Server);
    let program = net.server_program(tmp.path());
    let first = serve::start_with(&plan.dir.join("plan.json"), &program).unwrap();
    let _served = Served(plan.dir.clone());
    // A second lab on the same address and port: its server cannot bind and says so.
    let other = tmp.path().join("other");
    let second = self::plan(&other, "c", DhcpMode::Server);
    let err = serve::start_with(&second.dir.join("plan.json"), &program).unwrap_err();
    let said = err.to_string();
    assert!(said.contains("cannot serve HTTP on 10.99.13.1:18013"), "{said}");
    assert!(!serve::running(&second.dir));
    serve::stop(&plan.dir);
    assert!(!alive(first.pid));
}

#[test]
fn pxe_serve_without_a_plan_says_so_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["pxe-serve", "/nonexistent/pxe/plan.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("zerolab pxe-serve: cannot access boot plan /nonexistent/pxe/plan.json"), "{said}");
}
