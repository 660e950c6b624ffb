//! The boot plan: everything the boot services need to know about a `pxe` lab, written by
//! the provider as `LAB/pxe/plan.json` (0600: it holds every node's token) and read by the
//! boot server (`zerolab pxe-serve PLAN`) and by the renderer. It is the one input of
//! [`super::render`] and [`super::server`]: the cluster file is not read again there, so
//! what the services do is a function of this file (and of `state.json`).
//!
//! ```
//! use zerolab::provider::pxe::boot::plan::{Boot, BootPlan, Route};
//! let text = r#"{"lab":"rack1","dir":"/labs/rack1/pxe","interface":"eno2","server":"10.79.0.1",
//!   "prefix":24,"subnet":"10.79.0.0","http_port":8067,"dhcp":"server","loader":"ipxe",
//!   "authorized_key":"ssh-ed25519 AAAA lab","live":{"kernel":"/c/vmlinuz","initrd":"/c/initrd.img"},
//!   "image":null,"installer":null,"agent":null,
//!   "nodes":[{"name":"n1","mac":"52:54:00:12:34:01","address":"10.79.0.11",
//!             "token":"00112233445566778899aabbccddeeff","boot":{"install":{"route":"image"}},"disk":null}]}"#;
//! let plan: BootPlan = serde_json::from_str(text)?;
//! assert_eq!(plan.nodes[0].boot, Boot::Install { route: Route::Image });
//! assert_eq!(plan.nodes[0].mac_hyphens(), "52-54-00-12-34-01");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zerolab_config::cluster::net::MacAddr;

/// The plan's file name in `LAB/pxe/`.
pub const PLAN_FILE: &str = "plan.json";

/// A lab's boot services, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootPlan {
    /// The lab's name.
    pub lab: String,
    /// `LAB/pxe`: where every boot file, the state and the events live.
    pub dir: PathBuf,
    /// The host interface on the boot network (dnsmasq binds to it only).
    pub interface: String,
    /// This host's address on the boot network (DHCP, TFTP and HTTP answer there).
    pub server: Ipv4Addr,
    /// The boot network's prefix length.
    pub prefix: u8,
    /// The boot network's address.
    pub subnet: Ipv4Addr,
    /// The boot HTTP server's port.
    pub http_port: u16,
    /// Whether dnsmasq hands out addresses or only boot information.
    pub dhcp: DhcpMode,
    /// The first stage BIOS machines get.
    pub loader: Loader,
    /// The lab's public key line, authorized for root on every node.
    pub authorized_key: String,
    /// The live system.
    pub live: LiveArtifacts,
    /// The gzip'd raw disk image, when some node installs by image.
    pub image: Option<PathBuf>,
    /// Debian's netboot installer, when some node installs by preseed.
    pub installer: Option<InstallerArtifacts>,
    /// The agent binary, packed into `agent.cpio` (a second initrd) when given.
    pub agent: Option<PathBuf>,
    /// The machines, in the cluster file's order.
    pub nodes: Vec<BootNode>,
}

/// Who hands out addresses on the boot network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpMode {
    /// dnsmasq: a fixed lease per listed MAC, nothing for others.
    Server,
    /// Another DHCP server gives addresses; dnsmasq only adds boot information (proxyDHCP).
    Proxy,
}

/// The first stage a BIOS machine gets over TFTP (UEFI machines always get iPXE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loader {
    /// iPXE (`undionly.kpxe`), which fetches the node's script over HTTP.
    Ipxe,
    /// pxelinux (`lpxelinux.0`) with a per-MAC menu, the seed's route.
    Pxelinux,
}

/// The live system's files (P1's `build-live`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveArtifacts {
    /// The kernel (`vmlinuz`).
    pub kernel: PathBuf,
    /// The initramfs (`initrd.img`).
    pub initrd: PathBuf,
}

/// Debian's netboot installer and where it installs from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerArtifacts {
    /// `debian-installer/amd64/linux`.
    pub kernel: PathBuf,
    /// `debian-installer/amd64/initrd.gz`.
    pub initrd: PathBuf,
    /// The Debian mirror, `http://host[:port]/path` (from the host's apt sources).
    pub mirror: String,
    /// An HTTP proxy for the installer (`http://host:port/`), e.g. apt-cacher-ng.
    pub proxy: Option<String>,
}

/// One machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootNode {
    /// Its node name (also its hostname).
    pub name: String,
    /// The MAC of the interface it boots from.
    #[serde(with = "mac_text")]
    pub mac: MacAddr,
    /// Its address on the boot network (its fixed lease in server mode).
    pub address: Ipv4Addr,
    /// 32 hex digits: the secret in its metadata URL.
    pub token: String,
    /// What it boots.
    pub boot: Boot,
    /// The install target (`/dev/vda`); `None`: the first disk found.
    pub disk: Option<String>,
}

/// What a machine boots into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boot {
    /// The live system, every boot.
    Live,
    /// Installed to disk once, then from disk.
    Install {
        /// How it is installed.
        route: Route,
    },
    /// Its own disk, every boot.
    Local,
}

/// How an install node is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The live system writes zerolab's disk image.
    Image,
    /// Debian's installer with a rendered preseed.
    Preseed,
}

/// A plan that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Reading or writing the file failed.
    #[error("cannot access boot plan {path}")]
    Io {
        /// The plan file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a plan.
    #[error("boot plan {path} is not valid; run `zerolab up` again to rewrite it")]
    Parse {
        /// The plan file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl BootPlan {
    /// Reads the plan at `path`.
    pub fn load(path: &Path) -> Result<BootPlan, PlanError> {
        let text = fs::read(path).map_err(|source| PlanError::Io { path: path.to_owned(), source })?;
        serde_json::from_slice(&text).map_err(|source| PlanError::Parse { path: path.to_owned(), source })
    }

    /// Writes the plan to `path`, readable by its owner only (it holds the tokens), through
    /// a temporary file so a reader never sees half of it.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        let io = |source| PlanError::Io { path: path.to_owned(), source };
        let text = serde_json::to_vec_pretty(self).map_err(|e| io(e.into()))?;
        let temp = path.with_extension("json.tmp");
        let _ = fs::remove_file(&temp);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).map_err(io)?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(io)?;
        fs::rename(&temp, path).map_err(io)
    }

    /// The boot HTTP server's base URL, `http://SERVER:PORT`.
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", self.server, self.http_port)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&BootNode> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The node whose address is `address`.
    pub fn node_at(&self, address: Ipv4Addr) -> Option<&BootNode> {
        self.nodes.iter().find(|node| node.address == address)
    }

    /// The node whose MAC is `mac`.
    pub fn node_with_mac(&self, mac: MacAddr) -> Option<&BootNode> {
        self.nodes.iter().find(|node| node.mac == mac)
    }

    /// The boot network's netmask (`255.255.255.0` for a /24).
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = u32::MAX.checked_shl(32 - u32::from(self.prefix.min(32))).unwrap_or(0);
        Ipv4Addr::from(bits)
    }

    /// The IPv6 prefix the boot services advertise on the interface (a /64 of unique
    /// local addresses made from the IPv4 subnet): iPXE waits about 16 s for a router
    /// advertisement before it gives up on IPv6, and one from dnsmasq ends that wait.
    /// Written without the `/64`, e.g. `fd7a:6c00:a4f:0::`.
    pub fn ra_prefix(&self) -> String {
        let [a, b, c, _] = self.subnet.octets();
        format!("fd7a:6c00:{:x}:{:x}::", u16::from_be_bytes([a, b]), c)
    }

    /// The server's IPv6 address in [`BootPlan::ra_prefix`] (`...::1`).
    pub fn ra_address(&self) -> String {
        format!("{}1", self.ra_prefix())
    }
}

impl BootNode {
    /// The MAC as pxelinux and URLs write it: lowercase, hyphens.
    pub fn mac_hyphens(&self) -> String {
        self.mac.to_string().replace(':', "-")
    }

    /// The URL of this node's metadata: `http://SERVER:PORT/v1/node/TOKEN`.
    pub fn metadata_url(&self, plan: &BootPlan) -> String {
        format!("{}/v1/node/{}", plan.http_base(), self.token)
    }

    /// The URL of this node's iPXE script: `http://SERVER:PORT/v1/boot/aa-bb-cc-dd-ee-ff.ipxe`.
    pub fn script_url(&self, plan: &BootPlan) -> String {
        format!("{}/v1/boot/{}.ipxe", plan.http_base(), self.mac_hyphens())
    }
}

/// Serde for [`MacAddr`] as its text, `52:54:00:12:34:01`.
mod mac_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use zerolab_config::cluster::net::MacAddr;

    pub fn serialize<S: Serializer>(mac: &MacAddr, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(mac)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MacAddr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e| serde::de::Error::custom(format!("mac address `{text}`: {e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BootPlan {
        super::super::sample_plan(Path::new("/labs/p3/pxe"))
    }

    #[test]
    fn saves_private_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PLAN_FILE);
        let plan = sample();
        plan.save(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(BootPlan::load(&path).unwrap(), plan);
    }

    #[test]
    fn a_bad_mac_is_a_parse_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PLAN_FILE);
        let text = serde_json::to_string(&sample()).unwrap().replace("52:54:00:99:13:01", "nope");
        fs::write(&path, text).unwrap();
        let err = BootPlan::load(&path).unwrap_err();
        assert!(matches!(err, PlanError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("plan.json is not valid"), "{err}");
    }

    #[test]
    fn netmask_and_ra_prefix_follow_the_subnet() {
        let plan = sample();
        assert_eq!(plan.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(plan.ra_prefix(), "fd7a:6c00:a63:d::");
        assert_eq!(plan.ra_address(), "fd7a:6c00:a63:d::1");
    }
}
