//! Every boot file of a `pxe` lab, rendered from the [`BootPlan`] (and the nodes' installed
//! flags) with the `pxe-*.j2` templates, and the first-stage loaders copied from Debian's
//! packages. [`render_all`] is pure: it returns the files with their paths relative to
//! `plan.dir`, so `zerolab render` and the golden tests see exactly what the services use;
//! [`write_all`] writes them and copies the loaders into `tftp/`.
//!
//! | file | from |
//! |---|---|
//! | `dnsmasq.conf` | `pxe-dnsmasq.conf.j2` |
//! | `http/aa-bb-cc-dd-ee-ff.ipxe` | `pxe-boot.ipxe.j2`, per node |
//! | `tftp/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff` | `pxe-pxelinux.cfg.j2`, per node |
//! | `http/NODE.preseed.cfg` | `pxe-preseed.cfg.j2`, per node when the plan has an installer |
//!
//! What a node boots ([`Action`]) is decided here once, for the script, the menu and the
//! server alike.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use minijinja::context;

use super::plan::{Boot, BootNode, BootPlan, DhcpMode, Loader, Route};
use super::state::{self, State, StateError};
use crate::templates::{self, TemplateError};

/// How long the pxelinux menu waits before its default entry, in tenths of a second.
pub const MENU_TIMEOUT: u32 = 30;

/// What a node boots now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Its own disk (`boot: local`, or an install node that is installed).
    Local,
    /// The live system.
    Live,
    /// The live system, which writes the disk image and reboots.
    ImageInstall,
    /// Debian's installer with the node's preseed.
    Preseed,
}

impl Action {
    /// What `node` boots, `installed` or not.
    pub fn of(node: &BootNode, installed: bool) -> Action {
        match node.boot {
            Boot::Local => Action::Local,
            Boot::Live => Action::Live,
            Boot::Install { .. } if installed => Action::Local,
            Boot::Install { route: Route::Image } => Action::ImageInstall,
            Boot::Install { route: Route::Preseed } => Action::Preseed,
        }
    }
}

/// A first-stage file copied into `tftp/`: its name there, where Debian installs it, and
/// the package that does.
struct LoaderFile {
    name: &'static str,
    source: &'static str,
    package: &'static str,
}

/// iPXE, for every lab: BIOS (`undionly.kpxe`) and UEFI (`ipxe.efi`, `snponly.efi`).
const IPXE_FILES: &[LoaderFile] = &[
    LoaderFile { name: "undionly.kpxe", source: "/usr/lib/ipxe/undionly.kpxe", package: "ipxe" },
    LoaderFile { name: "ipxe.efi", source: "/usr/lib/ipxe/ipxe.efi", package: "ipxe" },
    LoaderFile { name: "snponly.efi", source: "/usr/lib/ipxe/snponly.efi", package: "ipxe" },
];

/// pxelinux with HTTP (`lpxelinux.0`) and the modules its menu loads, for `loader: pxelinux`.
const PXELINUX_FILES: &[LoaderFile] = &[
    LoaderFile { name: "lpxelinux.0", source: "/usr/lib/PXELINUX/lpxelinux.0", package: "pxelinux" },
    LoaderFile {
        name: "ldlinux.c32",
        source: "/usr/lib/syslinux/modules/bios/ldlinux.c32",
        package: "syslinux-common",
    },
    LoaderFile { name: "menu.c32", source: "/usr/lib/syslinux/modules/bios/menu.c32", package: "syslinux-common" },
    LoaderFile {
        name: "libutil.c32",
        source: "/usr/lib/syslinux/modules/bios/libutil.c32",
        package: "syslinux-common",
    },
    LoaderFile {
        name: "libcom32.c32",
        source: "/usr/lib/syslinux/modules/bios/libcom32.c32",
        package: "syslinux-common",
    },
];

/// The boot files could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed (a zerolab bug).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Writing a file failed.
    #[error("cannot write boot file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A first stage is not installed on this host.
    #[error(
        "first-stage loader {source_path} is missing; install Debian package {package} (apt-get install {package})"
    )]
    LoaderMissing {
        /// Where Debian installs it.
        source_path: String,
        /// The package that does.
        package: &'static str,
    },
    /// The installer's mirror is not a URL the installer can use.
    #[error("installer mirror `{mirror}` is not an http:// URL (http://HOST[:PORT]/PATH)")]
    Mirror {
        /// The mirror as planned.
        mirror: String,
    },
    /// A preseed was asked for but the plan has no installer.
    #[error("the boot plan has no installer; set `install: preseed` on a node to get one")]
    NoInstaller,
    /// The nodes' state could not be read.
    #[error(transparent)]
    State(Box<StateError>),
}

/// Every rendered boot file of `plan`, paths relative to `plan.dir`, with the installed
/// flags of `plan.dir/state.json` (none when it is missing).
pub fn render_all(plan: &BootPlan) -> Result<Vec<(PathBuf, String)>, RenderError> {
    let state = state::load(&plan.dir).map_err(|e| RenderError::State(Box::new(e)))?;
    render_with(plan, &state)
}

/// Every rendered boot file of `plan` for the nodes' `state`, paths relative to `plan.dir`.
pub fn render_with(plan: &BootPlan, state: &State) -> Result<Vec<(PathBuf, String)>, RenderError> {
    let mut files = vec![(PathBuf::from("dnsmasq.conf"), dnsmasq_conf(plan)?)];
    for node in &plan.nodes {
        let installed = state.installed(&node.name);
        files.push((script_path(node), ipxe_script(plan, node, installed)?));
        files.push((menu_path(node), pxelinux_menu(plan, node, installed)?));
        if plan.installer.is_some() {
            files.push((PathBuf::from(format!("http/{}.preseed.cfg", node.name)), preseed(plan, node)?));
        }
    }
    Ok(files)
}

/// Writes every boot file of `plan` under `plan.dir` and copies the first stages into
/// `tftp/`. Files holding tokens (scripts, preseeds, dnsmasq.conf) are 0600; the TFTP
/// files 0644.
pub fn write_all(plan: &BootPlan) -> Result<(), RenderError> {
    for (path, text) in render_all(plan)? {
        write_file(&plan.dir.join(path), text.as_bytes())?;
    }
    let loaders = IPXE_FILES.iter().chain(match plan.loader {
        Loader::Pxelinux => PXELINUX_FILES,
        Loader::Ipxe => &[],
    });
    for loader in loaders {
        let bytes = fs::read(loader.source).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                RenderError::LoaderMissing { source_path: loader.source.to_owned(), package: loader.package }
            }
            _ => RenderError::Io { path: loader.source.into(), source: e },
        })?;
        write_file(&plan.dir.join("tftp").join(loader.name), &bytes)?;
    }
    Ok(())
}

/// Rewrites `node`'s iPXE script and pxelinux menu for `installed`.
pub fn write_node(plan: &BootPlan, node: &BootNode, installed: bool) -> Result<(), RenderError> {
    write_file(&plan.dir.join(script_path(node)), ipxe_script(plan, node, installed)?.as_bytes())?;
    write_file(&plan.dir.join(menu_path(node)), pxelinux_menu(plan, node, installed)?.as_bytes())
}

fn script_path(node: &BootNode) -> PathBuf {
    PathBuf::from(format!("http/{}.ipxe", node.mac_hyphens()))
}

fn menu_path(node: &BootNode) -> PathBuf {
    PathBuf::from(format!("tftp/pxelinux.cfg/01-{}", node.mac_hyphens()))
}

/// `path` with `bytes`, through a temporary file renamed over it (dnsmasq and the HTTP
/// server never read half a file); parents made as needed.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RenderError> {
    let io = |source| RenderError::Io { path: path.to_owned(), source };
    let public = path.components().any(|c| c.as_os_str() == "tftp");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = path.with_file_name(name);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(if public { 0o644 } else { 0o600 })
        .open(&temp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    fs::rename(&temp, path).map_err(io)
}

/// `LAB/pxe/dnsmasq.conf`.
pub fn dnsmasq_conf(plan: &BootPlan) -> Result<String, RenderError> {
    let nodes: Vec<_> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(index, node)| {
            context! {
                name => node.name.clone(),
                tag => format!("zl{index}"),
                mac => node.mac.to_string(),
                address => node.address.to_string(),
                script => node.script_url(plan),
            }
        })
        .collect();
    Ok(templates::render(
        templates::PXE_DNSMASQ,
        context! {
            lab => plan.lab.clone(),
            dir => plan.dir.to_string_lossy(),
            interface => plan.interface.clone(),
            mode => match plan.dhcp { DhcpMode::Server => "server", DhcpMode::Proxy => "proxy" },
            loader => loader_name(plan.loader),
            bios_loader => match plan.loader { Loader::Ipxe => "undionly.kpxe", Loader::Pxelinux => "lpxelinux.0" },
            subnet => plan.subnet.to_string(),
            netmask => plan.netmask().to_string(),
            server => plan.server.to_string(),
            ra_prefix => plan.ra_prefix(),
            nodes => nodes,
        },
    )?)
}

fn loader_name(loader: Loader) -> &'static str {
    match loader {
        Loader::Ipxe => "ipxe",
        Loader::Pxelinux => "pxelinux",
    }
}

/// `node`'s iPXE script (served at `/v1/boot/MAC.ipxe`).
pub fn ipxe_script(plan: &BootPlan, node: &BootNode, installed: bool) -> Result<String, RenderError> {
    let action = Action::of(node, installed);
    let (mode, what) = match action {
        Action::Local => ("local", "its disk"),
        Action::Live => ("live", "the live system"),
        Action::ImageInstall => ("live", "the image install"),
        Action::Preseed => ("preseed", "Debian's installer"),
    };
    Ok(templates::render(
        templates::PXE_IPXE,
        context! {
            lab => plan.lab.clone(),
            node => node.name.clone(),
            mac => node.mac.to_string(),
            mode => mode,
            what => what,
            http => plan.http_base(),
            agent => plan.agent.is_some(),
            live_args => live_args(plan, node, action),
            installer_args => installer_args(plan, node),
            // An image install's disk carries GRUB for UEFI at the standard path, but
            // iPXE's `exit` does not return to OVMF's boot manager: UEFI machines chain
            // the image's own GRUB instead (it finds the root by its label).
            efi_grub => node.boot == Boot::Install { route: Route::Image } && plan.image.is_some(),
        },
    )?)
}

/// `node`'s pxelinux menu (`tftp/pxelinux.cfg/01-MAC`).
pub fn pxelinux_menu(plan: &BootPlan, node: &BootNode, installed: bool) -> Result<String, RenderError> {
    let action = Action::of(node, installed);
    let (default, live_label) = match action {
        Action::Local => ("local", "zerolab live system"),
        Action::Live => ("live", "zerolab live system"),
        Action::ImageInstall => ("live", "zerolab image install"),
        Action::Preseed => ("install", "zerolab live system"),
    };
    Ok(templates::render(
        templates::PXE_PXELINUX,
        context! {
            lab => plan.lab.clone(),
            node => node.name.clone(),
            mac => node.mac.to_string(),
            timeout => MENU_TIMEOUT,
            default => default,
            live_label => live_label,
            http => plan.http_base(),
            agent => plan.agent.is_some(),
            live_args => live_args(plan, node, action),
            installer => plan.installer.is_some(),
            installer_args => installer_args(plan, node),
            disk => node.disk.clone().unwrap_or_else(|| "the first disk".to_owned()),
        },
    )?)
}

/// `node`'s Debian preseed (served at `/v1/node/TOKEN/preseed.cfg`).
pub fn preseed(plan: &BootPlan, node: &BootNode) -> Result<String, RenderError> {
    let installer = plan.installer.as_ref().ok_or(RenderError::NoInstaller)?;
    let proxy = installer.proxy.clone().unwrap_or_default();
    let (host, directory) = split_mirror(&installer.mirror)?;
    Ok(templates::render(
        templates::PXE_PRESEED,
        context! {
            lab => plan.lab.clone(),
            node => node.name.clone(),
            domain => plan.lab.clone(),
            url => node.metadata_url(plan),
            mirror_host => host,
            mirror_directory => directory,
            proxy => proxy,
            disk => node.disk.clone(),
        },
    )?)
}

/// `http://host[:port]/path` as the installer wants it: `host[:port]` and `/path`.
fn split_mirror(mirror: &str) -> Result<(String, String), RenderError> {
    let bad = || RenderError::Mirror { mirror: mirror.to_owned() };
    let rest = mirror.strip_prefix("http://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, "debian"));
    if host.is_empty() || host.contains(char::is_whitespace) || path.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host.to_owned(), format!("/{}", path.trim_end_matches('/'))))
}

/// The live system's kernel command line for `node` (the contract with `live-init`).
fn live_args(plan: &BootPlan, node: &BootNode, action: Action) -> String {
    let mut args = format!("console=ttyS0 quiet zerolab.url={}", node.metadata_url(plan));
    if action == Action::ImageInstall {
        args.push_str(&format!(" zerolab.mode=install zerolab.image={}/v1/files/disk.img.gz", plan.http_base()));
        if let Some(disk) = &node.disk {
            args.push_str(&format!(" zerolab.disk={disk}"));
        }
    } else {
        args.push_str(" zerolab.mode=live");
    }
    args.push_str(&format!(" BOOTIF=01-{}", node.mac_hyphens()));
    args
}

/// Debian installer's kernel arguments for `node`: unattended from its preseed URL.
fn installer_args(plan: &BootPlan, node: &BootNode) -> String {
    format!(
        "auto=true priority=critical url={}/preseed.cfg hostname={} domain={} locale=en_US.UTF-8 keymap=us \
         console=ttyS0 BOOTIF=01-{}",
        node.metadata_url(plan),
        node.name,
        plan.lab,
        node.mac_hyphens()
    )
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
