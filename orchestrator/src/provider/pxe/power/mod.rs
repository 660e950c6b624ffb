//! Power control for `pxe` machines: switch a node on, off or through a cycle, and ask
//! whether it is on, by one of four means a node's `power:` field names.
//!
//! - [`PowerSpec::Qmp`]: a QEMU machine's QMP socket ([`qmp`], a native client). QEMU must
//!   run with `-no-shutdown`, so that a guest that switches itself off stays a process
//!   that can be switched on again.
//! - [`PowerSpec::Ipmi`]: a BMC over IPMI-over-LAN (`ipmitool -I lanplus`), the password
//!   read from a private file and handed over in the environment, never on the command line.
//! - [`PowerSpec::Wol`]: a wake-on-LAN magic packet broadcast out of one interface; it can
//!   only switch a machine on, and it cannot tell whether a machine is on.
//! - [`PowerSpec::Command`]: shell commands of the user's, run with `sh -c` on this host.
//!
//! [`apply`] carries out a [`PowerAction`] and [`state`] reads a [`PowerState`]. Each call
//! is self-contained (one QMP connection, one `ipmitool` run, one socket, one shell) and
//! bounded by a timeout, so nothing blocks the runtime or waits forever. `On` is
//! idempotent everywhere (a machine that is on stays untouched) and `Cycle` means "reset
//! and run", also from off; each means's module says how it maps them. Every error is one
//! [`PowerError`] line naming the node and what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

use zerolab_config::cluster::net::MacAddr;

mod command;
mod ipmi;
pub mod qmp;
mod wol;

/// How a node's power is switched (its `power:` field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PowerSpec {
    /// A QEMU machine's QMP socket (QEMU started with `-qmp unix:SOCKET,server=on,wait=off
    /// -no-shutdown`).
    Qmp {
        /// The Unix socket QEMU listens on.
        socket: PathBuf,
    },
    /// A BMC reached with `ipmitool -I lanplus`.
    Ipmi {
        /// The BMC's address or host name.
        host: String,
        /// Its UDP port (623 is IPMI's).
        port: u16,
        /// The BMC user.
        user: String,
        /// A file holding the user's password on its first line, readable by its owner only.
        password_file: PathBuf,
        /// The RMCP+ cipher suite (`ipmitool -C`); `None` lets ipmitool ask the BMC, which
        /// costs about 10 s on BMCs that do not answer that question (OpenIPMI's `ipmi_sim`:
        /// give it 3).
        cipher_suite: Option<u8>,
    },
    /// A wake-on-LAN magic packet (switches on only).
    Wol {
        /// The node's MAC address, the packet's target.
        mac: MacAddr,
        /// The host interface the packet is broadcast out of (the boot network's).
        interface: String,
    },
    /// Shell commands run with `sh -c` on this host, with `ZEROLAB_NODE`, `ZEROLAB_ACTION`
    /// (`on`, `off` or `status`) and, when known, `ZEROLAB_MAC` in their environment.
    Command {
        /// Switches the machine on; exits 0 when done.
        on: String,
        /// Switches the machine off; exits 0 when done.
        off: String,
        /// Prints `on` or `off` (anything else reads as unknown).
        status: Option<String>,
        /// The node's MAC address, for `ZEROLAB_MAC`.
        mac: Option<MacAddr>,
    },
}

/// What to do to a machine's power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerAction {
    /// Switch on (a machine that is on is left alone).
    On,
    /// Switch off at once, like holding the power button (no clean shutdown).
    Off,
    /// Reset and run: the machine boots from scratch, whether it was on or off.
    Cycle,
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
        })
    }
}

/// Whether a machine is on, as far as its power control can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Running.
    On,
    /// Off: switched on, it boots from scratch.
    Off,
    /// Its power control cannot tell (wake-on-LAN, a command without `status`, or a state
    /// that is neither, such as a QEMU machine paused by hand).
    Unknown,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        })
    }
}

/// Why a node's power could not be switched or read.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// The QMP conversation failed (the source says how and what to check).
    #[error("node {node}: QMP socket {}: {source}", socket.display())]
    Qmp {
        /// The node.
        node: String,
        /// Its QMP socket.
        socket: PathBuf,
        /// What went wrong.
        #[source]
        source: qmp::QmpError,
    },
    /// ipmitool is not installed.
    #[error("node {node}: ipmitool not found: install it (apt-get install ipmitool; scripts/setup does)")]
    IpmitoolMissing {
        /// The node.
        node: String,
    },
    /// The BMC password file could not be read.
    #[error("node {node}: cannot read the BMC password file {}: {source}", path.display())]
    PasswordFile {
        /// The node.
        node: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The BMC password file is open to other users.
    #[error(
        "node {node}: the BMC password file {} is open to group or others (mode {mode:03o}): `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    PasswordFileOpen {
        /// The node.
        node: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// ipmitool ran and failed (the BMC did not answer, refused the login or the command).
    #[error(
        "node {node}: the BMC at {host}:{port} did not carry out `chassis power {command}`: {detail}; check the \
         address, port, user and password file, and that the BMC answers IPMI over LAN (lanplus)"
    )]
    Ipmi {
        /// The node.
        node: String,
        /// The BMC's host.
        host: String,
        /// Its port.
        port: u16,
        /// `on`, `off`, `cycle` or `status`.
        command: &'static str,
        /// ipmitool's last error line, or that it timed out.
        detail: String,
    },
    /// The BMC answered the status question with something else than on or off.
    #[error("node {node}: the BMC at {host}:{port} answered the power status with `{output}`, not on or off")]
    IpmiStatus {
        /// The node.
        node: String,
        /// The BMC's host.
        host: String,
        /// Its port.
        port: u16,
        /// What ipmitool printed.
        output: String,
    },
    /// The BMC accepted the command but the machine did not reach the state in time.
    #[error(
        "node {node}: the BMC accepted power {want} but still reports the machine {got} after {seconds} s; check \
         the machine and its BMC"
    )]
    NotReached {
        /// The node.
        node: String,
        /// The state asked for.
        want: PowerState,
        /// The state last read.
        got: PowerState,
        /// How long zerolab waited.
        seconds: u64,
    },
    /// Wake-on-LAN cannot switch machines off.
    #[error(
        "node {node}: power {action} is not supported: wake-on-LAN can only switch a machine on; switch it off by \
         hand or give the node another power control (qmp, ipmi or command)"
    )]
    WolUnsupported {
        /// The node.
        node: String,
        /// The action asked for.
        action: PowerAction,
    },
    /// The magic packet could not be sent.
    #[error(
        "node {node}: cannot send the wake-on-LAN packet out of {interface}: {source}; the interface must exist \
         and be up, and sending on it needs root"
    )]
    Wol {
        /// The node.
        node: String,
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A program could not be started.
    #[error("node {node}: cannot run {program}: {source}")]
    Spawn {
        /// The node.
        node: String,
        /// `sh` or `ipmitool`.
        program: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A power command exited non-zero.
    #[error("node {node}: the power {role} command failed ({status}): {detail}; fix the node's power.command.{role}")]
    CommandFailed {
        /// The node.
        node: String,
        /// `on`, `off` or `status`.
        role: &'static str,
        /// How it exited.
        status: String,
        /// Its last line on stderr.
        detail: String,
    },
    /// A power command ran past its timeout and was killed.
    #[error(
        "node {node}: the power {role} command did not finish within {seconds} s and was killed; make it return \
         once the machine is switched"
    )]
    CommandTimeout {
        /// The node.
        node: String,
        /// `on`, `off` or `status`.
        role: &'static str,
        /// The timeout.
        seconds: u64,
    },
}

/// Carries out `action` on `node`'s machine through `spec`; returns once the power control
/// has done it (for QMP and IPMI on and off: once the machine reports the new state).
pub async fn apply(spec: &PowerSpec, node: &str, action: PowerAction) -> Result<(), PowerError> {
    match spec {
        PowerSpec::Qmp { socket } => qmp::apply(socket, action).await.map_err(|source| PowerError::Qmp {
            node: node.to_owned(),
            socket: socket.clone(),
            source,
        }),
        PowerSpec::Ipmi { host, port, user, password_file, cipher_suite } => {
            let bmc = ipmi::Bmc { host, port: *port, user, password_file, cipher_suite: *cipher_suite };
            ipmi::apply(&bmc, node, action).await
        }
        PowerSpec::Wol { mac, interface } => match action {
            PowerAction::On => wol::wake(*mac, interface).await.map_err(|source| PowerError::Wol {
                node: node.to_owned(),
                interface: interface.clone(),
                source,
            }),
            PowerAction::Off | PowerAction::Cycle => Err(PowerError::WolUnsupported { node: node.to_owned(), action }),
        },
        PowerSpec::Command { on, off, mac, .. } => {
            let run = command::Commands { node, mac: *mac };
            match action {
                PowerAction::On => run.switch("on", on).await,
                PowerAction::Off => run.switch("off", off).await,
                PowerAction::Cycle => {
                    run.switch("off", off).await?;
                    run.switch("on", on).await
                }
            }
        }
    }
}

/// Whether `node`'s machine is on, as `spec` can tell.
pub async fn state(spec: &PowerSpec, node: &str) -> Result<PowerState, PowerError> {
    match spec {
        PowerSpec::Qmp { socket } => qmp::state(socket).await.map_err(|source| PowerError::Qmp {
            node: node.to_owned(),
            socket: socket.clone(),
            source,
        }),
        PowerSpec::Ipmi { host, port, user, password_file, cipher_suite } => {
            let bmc = ipmi::Bmc { host, port: *port, user, password_file, cipher_suite: *cipher_suite };
            ipmi::state(&bmc, node).await
        }
        PowerSpec::Wol { .. } => Ok(PowerState::Unknown),
        PowerSpec::Command { status: None, .. } => Ok(PowerState::Unknown),
        PowerSpec::Command { status: Some(status), mac, .. } => {
            command::Commands { node, mac: *mac }.status(status).await
        }
    }
}
