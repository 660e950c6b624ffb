//! A simulated BMC in front of a QEMU machine, for tests: OpenIPMI's `ipmi_sim` (Debian
//! package `openipmi`) configured from `fixtures/ipmi_sim/` so that chassis power on
//! starts the QEMU command line the test gives, power off ends that process, and power
//! status says whether it lives. zerolab reaches it like a real BMC, through ipmitool
//! (`PowerSpec::Ipmi` from [`Bmc::spec`]).
//!
//! Use: `Bmc::start(dir, BmcConfig { netns, addr, port, qemu })` with the QEMU arguments
//! (no `-pidfile`: the BMC adds its own to know the machine's process). On the loopback
//! address, pick the port with [`free_port`]; in a network namespace (`netns`, the
//! simulator and so the machine run inside it) any port, 623 being IPMI's. Dropping the
//! [`Bmc`] ends the simulator and the machine.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zerolab::provider::pxe::power::PowerSpec;

/// The BMC user the fixtures define.
pub const USER: &str = "admin";

/// Its password (the simulator's config holds it in the clear; zerolab reads it from
/// [`Bmc::password_file`]).
pub const PASSWORD: &str = "zerolab-bmc-pass";

/// Where and what the BMC runs.
pub struct BmcConfig<'a> {
    /// A network namespace to run the simulator (and so the machine) in, or `None` for
    /// this host's.
    pub netns: Option<&'a str>,
    /// The address it listens on (IPMI over LAN, UDP).
    pub addr: Ipv4Addr,
    /// Its UDP port.
    pub port: u16,
    /// The machine: `qemu-system-x86_64`'s arguments (each free of quotes).
    pub qemu: Vec<String>,
}

/// A running simulated BMC; dropping it ends the simulator and its machine.
pub struct Bmc {
    /// The address it listens on.
    pub addr: Ipv4Addr,
    /// Its UDP port.
    pub port: u16,
    /// A file holding [`PASSWORD`], mode 0600.
    pub password_file: PathBuf,
    pidfile: PathBuf,
    sim: Child,
}

/// Whether `ipmi_sim` and `ipmitool` are here; otherwise says that `test` is skipped.
pub fn programs_present(test: &str) -> bool {
    for (program, package) in
        [("ipmi_sim", "openipmi"), ("ipmitool", "ipmitool"), ("qemu-system-x86_64", "qemu-system-x86")]
    {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
        if !found {
            eprintln!("skipped: {test} needs {program} (apt-get install -y {package}; scripts/setup does)");
            return false;
        }
    }
    true
}

/// A port free for both UDP and TCP on `addr` now (a later bind may still lose a race).
pub fn free_port(addr: Ipv4Addr) -> u16 {
    loop {
        let udp = UdpSocket::bind((addr, 0)).expect("bind a UDP socket to find a free port");
        let port = udp.local_addr().expect("its address").port();
        if TcpListener::bind((addr, port)).is_ok() {
            return port;
        }
    }
}

impl Bmc {
    /// Starts the simulator in `dir` (its config, state and log go there) and waits until
    /// it answers over IPMI. The machine stays off until powered on.
    pub fn start(dir: &Path, config: BmcConfig<'_>) -> Bmc {
        let pidfile = dir.join("machine.pid");
        let mut qemu = vec!["qemu-system-x86_64".to_owned()];
        qemu.extend(config.qemu);
        qemu.extend(["-pidfile".to_owned(), pidfile.display().to_string()]);
        let startcmd = qemu
            .iter()
            .map(|arg| {
                assert!(!arg.contains(['\'', '"']), "a QEMU argument for the BMC holds a quote: {arg}");
                format!("'{arg}'")
            })
            .collect::<Vec<_>>()
            .join(" ");
        // In a fresh namespace nothing else listens; on this host's, ask for a free port.
        let serial_port = if config.netns.is_some() { 9002 } else { free_port(config.addr) };
        let lan = include_str!("fixtures/ipmi_sim/lan.conf")
            .replace("@ADDR@", &config.addr.to_string())
            .replace("@PORT@", &config.port.to_string())
            .replace("@SERIAL_PORT@", &serial_port.to_string())
            .replace("@USER@", USER)
            .replace("@PASSWORD@", PASSWORD)
            .replace("@STARTCMD@", &startcmd);
        let private = |path: &Path, text: &str| {
            std::fs::write(path, text).expect("write a BMC file");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod a BMC file");
        };
        private(&dir.join("lan.conf"), &lan);
        private(&dir.join("bmc.emu"), include_str!("fixtures/ipmi_sim/bmc.emu"));
        let password_file = dir.join("bmc.pass");
        private(&password_file, &format!("{PASSWORD}\n"));
        let state = dir.join("bmc-state");
        std::fs::create_dir_all(&state).expect("make the BMC's state dir");
        let log = std::fs::File::create(dir.join("ipmi_sim.log")).expect("create the BMC's log");

        let mut sim = match config.netns {
            Some(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns, "ipmi_sim"]);
                ip
            }
            None => Command::new("ipmi_sim"),
        };
        sim.arg("-c").arg(dir.join("lan.conf")).arg("-f").arg(dir.join("bmc.emu")).arg("-s").arg(&state).arg("-n");
        sim.stdin(Stdio::null()).stdout(log.try_clone().expect("dup the log")).stderr(log);
        let sim = sim.spawn().expect("start ipmi_sim");
        let bmc = Bmc { addr: config.addr, port: config.port, password_file, pidfile, sim };
        bmc.wait_ready(config.netns, dir);
        bmc
    }

    /// How zerolab reaches this BMC.
    pub fn spec(&self) -> PowerSpec {
        PowerSpec::Ipmi {
            host: self.addr.to_string(),
            port: self.port,
            user: USER.to_owned(),
            password_file: self.password_file.clone(),
            cipher_suite: Some(3),
        }
    }

    /// The machine's QEMU process while it lives (a zombie does not count).
    pub fn machine_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pidfile).ok()?.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// Polls `ipmitool chassis power status` until the simulator answers.
    fn wait_ready(&self, netns: Option<&str>, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut ipmitool = match netns {
                Some(netns) => {
                    let mut ip = Command::new("ip");
                    ip.args(["netns", "exec", netns, "ipmitool"]);
                    ip
                }
                None => Command::new("ipmitool"),
            };
            let port = self.port.to_string();
            let addr = self.addr.to_string();
            ipmitool
                .args(["-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "-H", &addr, "-p", &port, "-U", USER, "-E"]);
            ipmitool.args(["chassis", "power", "status"]).env("IPMI_PASSWORD", PASSWORD);
            let answered = ipmitool.output().is_ok_and(|out| out.status.success());
            if answered {
                return;
            }
            let log = std::fs::read_to_string(dir.join("ipmi_sim.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "ipmi_sim did not answer on {addr}:{port} within 10 s; its log:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let machine = self.machine_pid();
        // The simulator first, so that it cannot start the machine again.
        terminate(i32::try_from(self.sim.id()).unwrap_or(i32::MAX));
        let _ = self.sim.wait();
        if let Some(pid) = machine {
            terminate(pid);
        }
    }
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// SIGTERM, then SIGKILL if `pid` still runs after 5 s; returns once it no longer runs.
fn terminate(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid.as_raw()) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
