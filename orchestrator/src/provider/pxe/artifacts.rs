//! The files machines boot, built on this host from Debian's packages and cached
//! outside any lab (`${ZEROLAB_CACHE:-$HOME/.cache/zerolab}/pxe/`): the live system
//! (`orchestrator/pxe/build-live` and its `live-init`) and the installable disk image
//! (`orchestrator/pxe/build-image`). The scripts are part of the binary; each prints its
//! cache key (`--key`: a hash of the script and of the package versions it uses), and a
//! build runs only when the directory of that key is missing (the scripts lock, build
//! aside and rename, so two labs building at once never see half a system). Debian's
//! netboot installer comes from its package, `debian-installer-12-netboot-amd64`.

use std::path::{Path, PathBuf};

use super::boot::plan::{InstallerArtifacts, LiveArtifacts};
use super::error::{io, PxeError};

const BUILD_LIVE: &str = include_str!("../../../pxe/build-live");
const LIVE_INIT: &str = include_str!("../../../pxe/live-init");
const BUILD_IMAGE: &str = include_str!("../../../pxe/build-image");
/// Where Debian's netboot installer package puts its kernel and initrd.
const INSTALLER_DIR: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";

/// The cache directory of PXE artifacts.
pub fn cache_dir() -> PathBuf {
    let base = match std::env::var_os("ZEROLAB_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into()).join(".cache/zerolab"),
    };
    base.join("pxe")
}

/// The scripts, written once per content into the cache (`scripts-HASH/`), so they run
/// as the files their keys are computed from.
fn scripts() -> Result<PathBuf, PxeError> {
    let digest =
        zerolab_agent_api::Sha256::of_bytes([BUILD_LIVE, LIVE_INIT, BUILD_IMAGE].concat().as_bytes()).to_string();
    let dir = cache_dir().join(format!("scripts-{}", &digest[..16]));
    if !dir.join("build-image").exists() {
        let tmp = cache_dir().join(format!("scripts.tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        for (name, text) in [("build-live", BUILD_LIVE), ("live-init", LIVE_INIT), ("build-image", BUILD_IMAGE)] {
            std::fs::write(tmp.join(name), text).map_err(io(&tmp.join(name)))?;
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process put the same scripts there first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(dir)
}

/// What is built and where.
#[derive(Clone, Copy)]
enum Build {
    Live,
    Image,
}

impl Build {
    fn script(self) -> &'static str {
        match self {
            Build::Live => "build-live",
            Build::Image => "build-image",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Build::Live => "live",
            Build::Image => "image",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Build::Live => "the live system",
            Build::Image => "the disk image",
        }
    }

    /// The file whose presence says the build is complete.
    fn product(self) -> &'static str {
        match self {
            Build::Live => "initrd.img",
            Build::Image => "disk.img.gz",
        }
    }
}

/// The built directory of `build`, building it now when its key has none; `notice`
/// hears once that a build starts (it takes minutes).
async fn ensure(build: Build, log_dir: &Path, notice: &(dyn Fn(&str) + Send + Sync)) -> Result<PathBuf, PxeError> {
    let scripts = scripts()?;
    let script = scripts.join(build.script());
    let key = super::host::run("bash", &[&script.to_string_lossy(), "--key"]).await?;
    let out = cache_dir().join(format!("{}-{}", build.prefix(), key.trim()));
    if out.join(build.product()).exists() {
        return Ok(out);
    }
    notice(&format!("building {} into {} (first time only; minutes)", build.what(), out.display()));
    let log = log_dir.join(format!("{}.log", build.script()));
    let file = std::fs::File::create(&log).map_err(io(&log))?;
    let err = file.try_clone().map_err(io(&log))?;
    let status = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&out)
        .env("ZEROLAB_LIVE_INIT", scripts.join("live-init"))
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .await
        .map_err(io(&script))?;
    if !status.success() || !out.join(build.product()).exists() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let detail = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
        return Err(PxeError::Build { what: build.what(), detail, log });
    }
    Ok(out)
}

/// The live system's kernel and initramfs.
pub async fn live(log_dir: &Path, notice: &(dyn Fn(&str) + Send + Sync)) -> Result<LiveArtifacts, PxeError> {
    let dir = ensure(Build::Live, log_dir, notice).await?;
    Ok(LiveArtifacts { kernel: dir.join("vmlinuz"), initrd: dir.join("initrd.img") })
}

/// The installable disk image (gzip'd raw).
pub async fn image(log_dir: &Path, notice: &(dyn Fn(&str) + Send + Sync)) -> Result<PathBuf, PxeError> {
    Ok(ensure(Build::Image, log_dir, notice).await?.join("disk.img.gz"))
}

/// Debian's netboot installer, installing from `mirror` (through `proxy`).
pub fn installer(mirror: String, proxy: Option<String>) -> Result<InstallerArtifacts, PxeError> {
    let dir = Path::new(INSTALLER_DIR);
    if !dir.join("linux").exists() {
        return Err(PxeError::Missing {
            program: "Debian's netboot installer",
            package: "debian-installer-12-netboot-amd64",
        });
    }
    Ok(InstallerArtifacts { kernel: dir.join("linux"), initrd: dir.join("initrd.gz"), mirror, proxy })
}
