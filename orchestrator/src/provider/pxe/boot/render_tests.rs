//! The boot files against golden copies in `orchestrator/tests/golden/pxe/` (a fixed plan
//! in two shapes: server DHCP with iPXE, proxyDHCP with pxelinux). `ZEROLAB_BLESS=1`
//! rewrites the golden files from the current templates; review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use minijinja::context;

use super::super::plan::{DhcpMode, Loader};
use super::super::sample_plan;
use super::*;

fn golden_dir(variant: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pxe").join(variant)
}

fn check_golden(variant: &str, plan: &BootPlan, state: &State) {
    let bless = std::env::var_os("ZEROLAB_BLESS").is_some_and(|v| v == "1");
    let dir = golden_dir(variant);
    for (path, text) in render_with(plan, state).unwrap() {
        let golden = dir.join(&path);
        if bless {
            fs::create_dir_all(golden.parent().unwrap()).unwrap();
            fs::write(&golden, &text).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}; run with ZEROLAB_BLESS=1 to write it", golden.display()));
        assert!(text == expected, "{} differs from its golden file; the rendered text:\n{text}", golden.display());
    }
}

fn installed(node: &str) -> State {
    let mut state = State::default();
    state.nodes.insert(node.to_owned(), state::NodeState { installed: true });
    state
}

#[test]
fn server_mode_with_ipxe_matches_the_golden_files() {
    let plan = sample_plan(Path::new("/labs/p3lab/pxe"));
    check_golden("server-ipxe", &plan, &State::default());
}

#[test]
fn proxy_mode_with_pxelinux_matches_the_golden_files() {
    let mut plan = sample_plan(Path::new("/labs/p3lab/pxe"));
    plan.dhcp = DhcpMode::Proxy;
    plan.loader = Loader::Pxelinux;
    plan.agent = None;
    check_golden("proxy-pxelinux", &plan, &installed("n2"));
}

#[test]
fn an_installed_install_node_exits_to_its_disk() {
    let plan = sample_plan(Path::new("/labs/p3lab/pxe"));
    for name in ["n2", "n3"] {
        let node = plan.node(name).unwrap();
        let script = ipxe_script(&plan, node, true).unwrap();
        assert!(script.ends_with("exit\n") && !script.contains("kernel"), "{script}");
        assert!(pxelinux_menu(&plan, node, true).unwrap().contains("ONTIMEOUT local\n"));
    }
    let live = plan.node("n1").unwrap();
    assert!(ipxe_script(&plan, live, true).unwrap().contains("zerolab.mode=live"), "live ignores the flag");
}

#[test]
fn an_unknown_variable_is_an_error() {
    // Every variable of the script but `agent`: strict rendering refuses, naming it.
    let err = templates::render(
        templates::PXE_IPXE,
        context! { lab => "l", node => "n", mac => "m", mode => "live", what => "w", http => "h", live_args => "", installer_args => "" },
    )
    .unwrap_err();
    let source = err.source.to_string();
    assert!(source.contains("undefined"), "{source}");
}

#[test]
fn the_mirror_must_be_http() {
    assert_eq!(split_mirror("http://deb.debian.org/debian").unwrap(), ("deb.debian.org".into(), "/debian".into()));
    assert_eq!(split_mirror("http://10.0.0.1:3142/debian/").unwrap(), ("10.0.0.1:3142".into(), "/debian".into()));
    assert_eq!(split_mirror("http://mirror").unwrap(), ("mirror".into(), "/debian".into()));
    for bad in ["https://deb.debian.org/debian", "deb.debian.org", "http:///debian", "http://a b/debian"] {
        assert!(matches!(split_mirror(bad), Err(RenderError::Mirror { .. })), "{bad}");
    }
}

/// Runs `program args` when it is installed; `None` (after saying so) when it is not.
fn run_if_installed(program: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    let found =
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file());
    let Some(path) = found else {
        eprintln!("skipped: no {program} here (the suite's setup installs it)");
        return None;
    };
    Some(Command::new(path).args(args).output().unwrap())
}

#[test]
fn the_preseeds_pass_debconf_set_selections_check() {
    let dir = tempfile::tempdir().unwrap();
    let plan = sample_plan(dir.path());
    for node in &plan.nodes {
        let path = dir.path().join(format!("{}.cfg", node.name));
        fs::write(&path, preseed(&plan, node).unwrap()).unwrap();
        let Some(out) = run_if_installed("debconf-set-selections", &["-c".as_ref(), path.as_os_str()]) else {
            return;
        };
        assert!(out.status.success(), "{}: {}", node.name, String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{}: {}", node.name, String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn dnsmasq_accepts_both_configurations() {
    for (dhcp, loader) in [(DhcpMode::Server, Loader::Ipxe), (DhcpMode::Proxy, Loader::Pxelinux)] {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = sample_plan(dir.path());
        (plan.dhcp, plan.loader) = (dhcp, loader);
        let conf = dir.path().join("dnsmasq.conf");
        fs::write(&conf, dnsmasq_conf(&plan).unwrap()).unwrap();
        let mut arg = std::ffi::OsString::from("--conf-file=");
        arg.push(&conf);
        let Some(out) = run_if_installed("dnsmasq", &["--test".as_ref(), arg.as_os_str()]) else { return };
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.contains("syntax check OK"), "{dhcp:?}/{loader:?}: {said}");
    }
}

#[test]
fn write_all_puts_the_loaders_in_tftp_or_names_the_missing_package() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = sample_plan(dir.path());
    plan.loader = Loader::Pxelinux;
    match write_all(&plan) {
        Ok(()) => {
            for file in [
                "undionly.kpxe",
                "ipxe.efi",
                "lpxelinux.0",
                "ldlinux.c32",
                "menu.c32",
                "pxelinux.cfg/01-52-54-00-99-13-01",
            ] {
                assert!(dir.path().join("tftp").join(file).is_file(), "{file}");
            }
            assert!(dir.path().join("http/52-54-00-99-13-03.ipxe").is_file());
            assert!(dir.path().join("dnsmasq.conf").is_file());
        }
        Err(err @ RenderError::LoaderMissing { .. }) => {
            let text = err.to_string();
            assert!(text.contains("install Debian package"), "{text}");
            eprintln!("skipped: {text}");
        }
        Err(err) => panic!("{err}"),
    }
}
