//! What a `pxe` lab reads from its cluster file, checked: the lab's boot services
//! (`pxe:`, [`PxeLab`]) and each machine's boot and power ([`Settings`]). Every value
//! is checked here, with the file's locations; what needs the lab and its nodes
//! together (proxy DHCP needs fixed addresses, the server's address is no node's) is
//! checked by the lifecycle before anything is touched.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use zerolab_config::cluster::net::{MacAddr, Subnet};
use zerolab_config::cluster::schema::{NodeField, PowerSpecFile, Section};
use zerolab_config::cluster::{Checker, EntryView, LabView, Problem, ProviderSettings, YamlPath};

pub use super::boot::plan::{Boot, DhcpMode, Loader, Route};
use super::KIND;

/// The boot HTTP server's port when `pxe.http_port` is not given.
pub const DEFAULT_HTTP_PORT: u16 = 8067;
/// Seconds a machine may stay at one boot step when `pxe.deadline` is not given.
pub const DEFAULT_DEADLINE_SECS: u64 = 300;
/// The longest interface name Linux accepts (`IFNAMSIZ` - 1).
const MAX_INTERFACE: usize = 15;

/// The `pxe:` section, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PxeLab {
    /// The host interface on the boot network.
    pub interface: String,
    /// This host's address on it.
    pub server: Ipv4Addr,
    /// Whether `server` was written (else the subnet's `.1`).
    pub server_written: bool,
    /// DHCP server or proxy.
    pub dhcp: DhcpMode,
    /// The boot HTTP server's port.
    pub http_port: u16,
    /// The BIOS first stage.
    pub loader: Loader,
    /// The uplink the boot network is masqueraded to, if any.
    pub nat: Option<String>,
    /// How long a machine may stay at one boot step.
    pub deadline: Duration,
    /// The Debian mirror for the preseed installer (default: the host's apt source).
    pub mirror: Option<String>,
    /// An HTTP proxy for the preseed installer.
    pub proxy: Option<String>,
}

/// How a machine is switched on and off, as written (paths relative to the cluster
/// file's directory are resolved when used).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PowerConfig {
    /// A QEMU QMP socket.
    Qmp {
        /// The socket's path.
        socket: PathBuf,
    },
    /// An IPMI BMC.
    Ipmi {
        /// Its address.
        host: String,
        /// Its port.
        port: u16,
        /// The BMC user.
        user: String,
        /// The file holding the password.
        password_file: PathBuf,
        /// The RMCP+ cipher suite, when not asked of the BMC.
        cipher_suite: Option<u8>,
    },
    /// Wake-on-LAN, sent out of `interface` (default: the boot interface).
    Wol {
        /// The interface, when not the boot interface.
        interface: Option<String>,
    },
    /// Host commands (`sh -c`).
    Command {
        /// Switches the machine on.
        on: String,
        /// Switches it off.
        off: String,
        /// Prints `on` or `off`.
        status: Option<String>,
    },
}

/// A `pxe` node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The MAC address of the interface it boots from.
    pub mac: MacAddr,
    /// How it boots.
    pub boot: Boot,
    /// The disk it is installed to (`None`: the first disk the live system finds).
    pub disk: Option<String>,
    /// Its power control, if any.
    pub power: Option<PowerConfig>,
}

/// Nodes are known by their MAC: no two nodes of a lab may share one.
impl ProviderSettings for Settings {
    fn mac(&self) -> Option<MacAddr> {
        Some(self.mac)
    }
}

/// Reads `pxe:`; `None` (reported) when it is missing or a value is wrong.
pub(super) fn lab_settings(lab: &LabView<'_>, check: &mut Checker<'_>) -> Option<PxeLab> {
    let Some((spec, path)) = lab.pxe() else {
        let expected = "`pxe:` with at least `interface:`, the host interface on the boot network";
        check.report(&YamlPath::root(), Problem::MissingSection { section: Section::Pxe, provider: KIND, expected });
        return None;
    };
    let mut ok = true;
    let mut invalid = |check: &mut Checker<'_>, key: &'static str, value: String, expected: &str| {
        let problem = Problem::Invalid { field: key, value, expected: expected.to_owned() };
        check.report(&path.key(key), problem);
        ok = false;
    };
    let interface = match spec.interface.as_deref() {
        None => {
            let expected = "the host interface on the boot network, such as eno2";
            check.report(&path, Problem::MissingField { field: "interface", expected });
            return None;
        }
        Some(name) => {
            if !is_interface_name(name) {
                invalid(check, "interface", name.to_owned(), INTERFACE_EXPECTED);
            }
            name.to_owned()
        }
    };
    let subnet = lab.subnet();
    let server = match (spec.server.as_deref(), subnet) {
        (None, Some(subnet)) => subnet.host_address(),
        (None, None) => Ipv4Addr::UNSPECIFIED,
        (Some(text), subnet) => match text.parse::<Ipv4Addr>() {
            Ok(ip) if subnet.is_none_or(|s| usable(s, ip)) => ip,
            _ => {
                let expected = match subnet {
                    Some(subnet) => {
                        format!("an IPv4 address of this host inside {subnet}, not its network or broadcast address")
                    }
                    None => "an IPv4 address".to_owned(),
                };
                invalid(check, "server", text.to_owned(), &expected);
                Ipv4Addr::UNSPECIFIED
            }
        },
    };
    let dhcp = match spec.dhcp.as_deref() {
        None | Some("server") => DhcpMode::Server,
        Some("proxy") => DhcpMode::Proxy,
        Some(other) => {
            invalid(check, "dhcp", other.to_owned(), "server or proxy");
            DhcpMode::Server
        }
    };
    let loader = match spec.loader.as_deref() {
        None | Some("ipxe") => Loader::Ipxe,
        Some("pxelinux") => Loader::Pxelinux,
        Some(other) => {
            invalid(check, "loader", other.to_owned(), "ipxe or pxelinux");
            Loader::Ipxe
        }
    };
    let http_port = match spec.http_port {
        None => DEFAULT_HTTP_PORT,
        Some(0) => {
            invalid(check, "http_port", "0".to_owned(), "a port from 1 to 65535");
            0
        }
        Some(port) => port,
    };
    let nat = spec.nat.clone();
    if let Some(uplink) = &nat {
        if !is_interface_name(uplink) {
            invalid(check, "nat", uplink.clone(), INTERFACE_EXPECTED);
        } else if *uplink == interface {
            invalid(check, "nat", uplink.clone(), "an uplink interface other than the boot interface");
        }
    }
    let deadline = match spec.deadline {
        Some(0) => {
            invalid(check, "deadline", "0".to_owned(), "seconds a machine may stay at one boot step, at least 1");
            0
        }
        Some(secs) => secs,
        None => DEFAULT_DEADLINE_SECS,
    };
    for (key, value) in [("mirror", &spec.mirror), ("proxy", &spec.proxy)] {
        if let Some(url) = value {
            if !is_http_url(url) {
                invalid(check, key, url.clone(), "an http:// URL such as http://10.79.0.1:3142");
            }
        }
    }
    ok.then(|| PxeLab {
        interface,
        server,
        server_written: spec.server.is_some(),
        dhcp,
        http_port,
        loader,
        nat,
        deadline: Duration::from_secs(deadline),
        mirror: spec.mirror.clone(),
        proxy: spec.proxy.clone(),
    })
}

const INTERFACE_EXPECTED: &str = "a network interface name (1 to 15 characters, no `/`, `:` or spaces)";

/// Whether `name` can be a Linux interface's name.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_INTERFACE
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

/// Whether `ip` can be a host's address in `subnet`.
fn usable(subnet: Subnet, ip: Ipv4Addr) -> bool {
    subnet.contains(ip) && ip != subnet.network() && ip != subnet.broadcast()
}

/// Reads one node's `mac`, `boot`, `install`, `disk` and `power`.
pub(super) fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<Settings> {
    let mut ok = true;
    // A missing mac is reported by the common `required` check.
    let (text, path) = entry.mac()?;
    let mac = match text.parse() {
        Ok(mac) => Some(mac),
        Err(reason) => {
            check.report(&path, Problem::Mac { value: text.to_owned(), reason });
            None
        }
    };
    let route = match entry.install() {
        None | Some(("image", _)) => Route::Image,
        Some(("preseed", _)) => Route::Preseed,
        Some((other, path)) => {
            let expected = NodeField::Install.hint().to_owned();
            check.report(&path, Problem::Invalid { field: "install", value: other.to_owned(), expected });
            ok = false;
            Route::Image
        }
    };
    let boot = match entry.boot() {
        None | Some(("live", _)) => Boot::Live,
        Some(("install", _)) => Boot::Install { route },
        Some(("local", _)) => Boot::Local,
        Some((other, path)) => {
            let expected = NodeField::Boot.hint().to_owned();
            check.report(&path, Problem::Invalid { field: "boot", value: other.to_owned(), expected });
            ok = false;
            Boot::Live
        }
    };
    if let (Some((value, path)), false) = (entry.install(), matches!(boot, Boot::Install { .. })) {
        let expected = "no `install` on a node that does not have `boot: install`".to_owned();
        check.report(&path, Problem::Invalid { field: "install", value: value.to_owned(), expected });
        ok = false;
    }
    let disk = match entry.disk() {
        None => None,
        Some((disk, path)) => {
            let valid = disk.starts_with("/dev/") && disk.len() > 5 && !disk.contains(char::is_whitespace);
            if !valid {
                let expected = NodeField::Disk.hint().to_owned();
                check.report(&path, Problem::Invalid { field: "disk", value: disk.to_owned(), expected });
                ok = false;
            }
            Some(disk.to_owned())
        }
    };
    let power = match entry.power() {
        None => None,
        Some((spec, path)) => {
            let power = power_config(spec, &path, check);
            ok &= power.is_some();
            power
        }
    };
    (ok && mac.is_some()).then(|| Settings { mac: mac.expect("checked"), boot, disk, power })
}

/// `power:`: exactly one of its kinds, each with what it needs.
fn power_config(spec: &PowerSpecFile, path: &YamlPath, check: &mut Checker<'_>) -> Option<PowerConfig> {
    let kinds = [spec.qmp.is_some(), spec.ipmi.is_some(), spec.wol.is_some(), spec.command.is_some()];
    let given = kinds.iter().filter(|given| **given).count();
    if given != 1 {
        let value = if given == 0 { "(empty)" } else { "(more than one kind)" }.to_owned();
        let expected = "exactly one of qmp, ipmi, wol or command".to_owned();
        check.report(path, Problem::Invalid { field: "power", value, expected });
        return None;
    }
    let mut empty = |key: &str, field: &'static str, value: &str, expected: &'static str| {
        let blank = value.trim().is_empty();
        if blank {
            check.report(&path.key(key), Problem::MissingField { field, expected });
        }
        !blank
    };
    if let Some(socket) = &spec.qmp {
        return empty("qmp", "qmp", socket, "the path of a QEMU QMP socket")
            .then(|| PowerConfig::Qmp { socket: PathBuf::from(socket) });
    }
    if let Some(ipmi) = &spec.ipmi {
        let mut ok = empty("ipmi", "ipmi.host", &ipmi.host, "the BMC's address");
        ok &= empty("ipmi", "ipmi.user", &ipmi.user, "the BMC user");
        ok &= empty("ipmi", "ipmi.password_file", &ipmi.password_file, "a file holding the BMC password");
        if ipmi.port == Some(0) {
            let problem =
                Problem::Invalid { field: "ipmi.port", value: "0".into(), expected: "a port from 1 to 65535".into() };
            check.report(&path.key("ipmi").key("port"), problem);
            ok = false;
        }
        return ok.then(|| PowerConfig::Ipmi {
            host: ipmi.host.clone(),
            port: ipmi.port.unwrap_or(623),
            user: ipmi.user.clone(),
            password_file: PathBuf::from(&ipmi.password_file),
            cipher_suite: ipmi.cipher_suite,
        });
    }
    if let Some(wol) = &spec.wol {
        if let Some(name) = wol.interface.as_deref().filter(|name| !is_interface_name(name)) {
            let problem = Problem::Invalid {
                field: "wol.interface",
                value: name.to_owned(),
                expected: INTERFACE_EXPECTED.into(),
            };
            check.report(&path.key("wol").key("interface"), problem);
            return None;
        }
        return Some(PowerConfig::Wol { interface: wol.interface.clone() });
    }
    let command = spec.command.as_ref().expect("one kind is given");
    let mut ok = empty("command", "command.on", &command.on, "a shell command that switches the machine on");
    ok &= empty("command", "command.off", &command.off, "a shell command that switches the machine off");
    ok.then(|| PowerConfig::Command {
        on: command.on.clone(),
        off: command.off.clone(),
        status: command.status.clone(),
    })
}
