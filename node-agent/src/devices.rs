//! A session's devices and program: checked when the request arrives, made ready on
//! the session's own thread.
//!
//! [`check`] is everything that needs no I/O beyond a blob lookup: each device at most
//! once, a source its direction allows (inputs from a blob, a node file or a URL;
//! outputs to the session's directory or a node file), absolute node paths,
//! well-formed URLs, an `image` device when the program is `image:PATH`, and the
//! blobs it names stored (and pinned, see [`crate::blobs`]); checksums and the program
//! are typed ([`Sha256`], [`ProgramRef`]), so a malformed one never parses.
//! Its errors are the request's (400). [`Checked::prepare`] then opens every device
//! as the guest's channel, in the order stdin, stdout, stderr, input, output, image:
//! it fetches URLs (through the [`Fetcher`]), checks node files against their
//! checksums, and takes an `image:` program out of the tar into the blob store (once
//! per image and path while the agent runs). A session with an `image` device also
//! gets `/dev/nvram`, whose fstab mounts the image at `/` for zvm-cc guests. Its errors end the session with a report
//! naming the device.
//!
//! Node paths are opened as the agent's user. That is no new power: the API is
//! reachable only by that user and the lab's SSH key, which can run anything there.
//! But they are opened the way the sandbox opens a manifest's channels
//! ([`open_path`]), so a node path is a channel source like any other: a regular
//! file on an ordinary file system, a FIFO or a harmless device, never procfs,
//! sysfs or another device (the agent's own memory, the kernel's log), and never
//! reached through a symbolic link another user planted in a sticky
//! world-writable directory such as `/tmp`. Those are refused with code 93.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Seek;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use zerolab_sandbox::channel::{open_path, Access, Channel, SourceError};
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::session::error_chain;

use crate::api::{self, DeviceName, DeviceSource, ProgramRef, Sha256};
use crate::blobs::{BlobError, BlobPin, Blobs};
use crate::fetch::{FetchError, Fetcher};

/// Why a request's devices or program were refused.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// A device named twice.
    #[error("device {0} is given twice; give each device once")]
    Twice(&'static str),
    /// A source the device's direction does not allow.
    #[error("device {name} cannot {what}; {hint}")]
    Direction {
        /// The device.
        name: &'static str,
        /// What was asked.
        what: &'static str,
        /// What is allowed.
        hint: &'static str,
    },
    /// A node path that is relative or holds a NUL.
    #[error("device {name}: node path {path:?} is not absolute; give an absolute path on the node")]
    NodePath {
        /// The device.
        name: &'static str,
        /// The path.
        path: String,
    },
    /// Not an http or https URL.
    #[error("device {name}: {url:?} is not an http:// or https:// URL with a host")]
    Url {
        /// The device.
        name: &'static str,
        /// What was given.
        url: String,
    },
    /// A URL device on an agent that cannot fetch (a library user's setup).
    #[error("device {0}: this agent fetches no URLs; URL devices need the zerolab-agent daemon")]
    NoFetcher(&'static str),
    /// `image:PATH` without an image device, or an empty path.
    #[error(
        "program {0:?} needs an image device and a path inside it; add an `image` device or give the program as a blob"
    )]
    ImageProgram(String),
    /// A blob missing or misnamed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Why a device could not be made ready; the session ends with this as its cause.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A file could not be opened or read.
    #[error("device {name}: cannot open {path}: {source}; check the path on the node")]
    Open {
        /// The device.
        name: &'static str,
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A node path that is not a source a channel may be (code 93).
    #[error("device {name}")]
    Refused {
        /// The device.
        name: &'static str,
        /// What the path is.
        #[source]
        source: SourceError,
    },
    /// A node file that does not hash to its checksum.
    #[error("device {name}: {path} has sha256 {actual}, not the expected {expected}; the file changed or the job's sha256 is wrong")]
    Mismatch {
        /// The device.
        name: &'static str,
        /// The file.
        path: String,
        /// The checksum asked for.
        expected: Sha256,
        /// What the file hashes to.
        actual: Sha256,
    },
    /// A URL could not be fetched.
    #[error("device {name}: {source}")]
    Fetch {
        /// The device.
        name: &'static str,
        /// Cause.
        #[source]
        source: FetchError,
    },
    /// `image:PATH` names no regular file in the image.
    #[error("program image:{path}: no such file in the image; list it with `tar tf IMAGE`")]
    NotInImage {
        /// The path asked for.
        path: String,
    },
    /// The image is not a readable tar, or the program could not be stored.
    #[error("program image:{path}: cannot take it out of the image: {cause}; check that the image is a tar")]
    Extract {
        /// The path asked for.
        path: String,
        /// Cause.
        cause: String,
    },
    /// Killed while preparing.
    #[error("killed")]
    Killed,
}

/// The program as asked for.
#[derive(Debug)]
enum ProgramSource {
    /// An uploaded blob, pinned.
    Blob(BlobPin),
    /// A path inside the `image` device.
    Image(String),
}

/// A request's devices and program, checked; the blobs it names are pinned (kept
/// from collection) for as long as it exists.
#[derive(Debug)]
pub struct Checked {
    program: ProgramSource,
    /// In channel order (stdin, stdout, stderr, input, output, image).
    devices: Vec<(DeviceName, DeviceSource)>,
    /// The blob devices' pins.
    pins: Vec<BlobPin>,
}

/// What [`Checked::prepare`] made ready.
#[derive(Debug)]
pub struct Prepared {
    /// The program's file.
    pub program: PathBuf,
    /// The guest's devices, in channel order.
    pub channels: Vec<Channel>,
    /// The blobs fetched or extracted for it, pinned until this is dropped (after the
    /// guest ends).
    pub pins: Vec<BlobPin>,
}

/// Programs taken out of images, by image blob and path: the program's blob.
#[derive(Debug, Default)]
pub struct Extracted(Mutex<HashMap<(Sha256, String), Sha256>>);

/// What [`Checked::prepare`] works with.
pub struct Context<'a> {
    /// The session's directory (its `stdout`, `stderr`, `output`).
    pub dir: &'a Path,
    /// The blob store.
    pub blobs: &'a Blobs,
    /// The URL fetcher, if any.
    pub fetcher: Option<&'a Fetcher>,
    /// Programs already taken out of images.
    pub extracted: &'a Extracted,
    /// When the session's time runs out.
    pub deadline: Instant,
    /// The session's timeout in seconds (for messages).
    pub timeout_secs: u64,
    /// Resolves when the session is killed.
    pub cancel: &'a tokio::sync::Notify,
}

/// Channel order: as documented.
const ORDER: [DeviceName; 6] = DeviceName::ALL;

fn is_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.split(['/', '?', '#']).next().unwrap_or_default().is_empty())
}

/// Checks a request's devices and program against the blob store.
pub fn check(req: &api::SessionRequest, blobs: &Blobs, can_fetch: bool) -> Result<Checked, DevicesError> {
    let mut given: HashMap<DeviceName, DeviceSource> = HashMap::new();
    let mut pins = Vec::new();
    for device in &req.devices {
        let name = device.name.name();
        let input = device.name.is_input();
        match &device.source {
            DeviceSource::Session if input => {
                return Err(DevicesError::Direction {
                    name,
                    what: "come from the session",
                    hint: "an input comes from a blob, a node file or a URL",
                })
            }
            DeviceSource::Blob { .. } | DeviceSource::Url { .. } if !input => {
                return Err(DevicesError::Direction {
                    name,
                    what: "go to a blob or a URL",
                    hint: "an output goes to the session (\"session\") or a node file",
                })
            }
            DeviceSource::Node { sha256: Some(_), .. } if !input => {
                return Err(DevicesError::Direction {
                    name,
                    what: "have a sha256",
                    hint: "checksums are checked on inputs only",
                })
            }
            DeviceSource::Session => {}
            DeviceSource::Blob { sha256 } => pins.push(blobs.pin(sha256)?),
            DeviceSource::Node { path, .. } => {
                if !path.starts_with('/') || path.contains('\0') {
                    return Err(DevicesError::NodePath { name, path: path.clone() });
                }
            }
            DeviceSource::Url { url, .. } => {
                if !is_url(url) {
                    return Err(DevicesError::Url { name, url: url.clone() });
                }
                if !can_fetch {
                    return Err(DevicesError::NoFetcher(name));
                }
            }
        }
        if given.insert(device.name, device.source.clone()).is_some() {
            return Err(DevicesError::Twice(name));
        }
    }
    let program = match &req.program {
        ProgramRef::Image(path) if given.contains_key(&DeviceName::Image) => ProgramSource::Image(path.clone()),
        ProgramRef::Image(_) => return Err(DevicesError::ImageProgram(req.program.to_string())),
        ProgramRef::Blob(sha256) => ProgramSource::Blob(blobs.pin(sha256)?),
    };
    let devices = ORDER.iter().filter_map(|name| given.remove(name).map(|source| (*name, source))).collect();
    Ok(Checked { program, devices, pins })
}

impl Checked {
    /// The aliases of the devices that take work before the guest can start (a URL, a
    /// node file to check, an image to take the program from).
    pub fn needs_work(&self) -> Vec<String> {
        let image_program = matches!(self.program, ProgramSource::Image(_));
        self.devices
            .iter()
            .filter(|(name, source)| match source {
                DeviceSource::Url { .. } | DeviceSource::Node { sha256: Some(_), .. } => true,
                _ => image_program && *name == DeviceName::Image,
            })
            .map(|(name, _)| format!("/dev/{}", name.name()))
            .collect()
    }

    /// The outputs kept in the session's directory (`stdout`, `stderr`, `output`).
    pub fn kept(&self) -> Vec<DeviceName> {
        ORDER
            .into_iter()
            .filter(|name| !name.is_input())
            .filter(|name| match self.devices.iter().find(|(n, _)| n == name) {
                Some((_, source)) => *source == DeviceSource::Session,
                None => *name != DeviceName::Output,
            })
            .collect()
    }

    /// Opens every device as the guest's channel and finds the program.
    pub fn prepare(&self, cx: &Context<'_>) -> Result<Prepared, PrepareError> {
        let mut channels = Vec::with_capacity(self.devices.len() + 3);
        let mut pins = Vec::new();
        let mut image = None;
        for name in ORDER {
            let source = self.devices.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            let Some(file) = open(name, source, cx, &self.pins, &mut pins)? else { continue };
            let (access, limits) = match name {
                DeviceName::Stdin => (AccessType::SeqGetSeqPut, READ_ONLY),
                DeviceName::Input | DeviceName::Image => (AccessType::RandGetRandPut, READ_ONLY),
                DeviceName::Stdout | DeviceName::Stderr | DeviceName::Output => (AccessType::SeqGetSeqPut, WRITE_ONLY),
            };
            if name == DeviceName::Image {
                image = Some(file.try_clone().map_err(|e| open_error(name, "the image", e))?);
            }
            let alias = format!("/dev/{}", name.name());
            channels.push(Channel::from_fd(alias, access, limits, file.into()).map_err(|e| open_error(name, "it", e))?);
        }
        if image.is_some() {
            channels.push(nvram().map_err(|e| open_error(DeviceName::Image, "/dev/nvram", e))?);
        }
        let program = match &self.program {
            ProgramSource::Blob(pin) => pin.path().to_path_buf(),
            ProgramSource::Image(path) => {
                let image = image.ok_or_else(|| PrepareError::NotInImage { path: path.clone() })?;
                let key = self.devices.iter().find_map(|(n, s)| match (n, s) {
                    (DeviceName::Image, DeviceSource::Blob { sha256 }) => Some(*sha256),
                    (DeviceName::Image, DeviceSource::Url { sha256: Some(sha256), .. }) => Some(*sha256),
                    _ => None,
                });
                let pin = extract_cached(image, path, key, cx)?;
                let program = pin.path().to_path_buf();
                pins.push(pin);
                program
            }
        };
        Ok(Prepared { program, channels, pins })
    }
}

/// `/dev/nvram`, the runtime's configuration channel (as zvsh writes it): its
/// `[fstab]` mounts the `image` device at `/`, so a zvm-cc guest (Python from
/// `python.tar`, busybox...) sees the image as its file system. zvm-gcc guests
/// never read it. An unnamed temporary file, read-only to the guest.
fn nvram() -> std::io::Result<Channel> {
    let mut file = tempfile::tempfile()?;
    std::io::Write::write_all(&mut file, b"[fstab]\nchannel=/dev/image, mountpoint=/, access=ro\n")?;
    file.rewind()?;
    Channel::from_fd("/dev/nvram", AccessType::SeqGetSeqPut, READ_ONLY, file.into())
}

const READ_ONLY: Limits = Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED };
const WRITE_ONLY: Limits = Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED };

fn open_error(name: DeviceName, path: &str, source: std::io::Error) -> PrepareError {
    PrepareError::Open { name: name.name(), path: path.to_owned(), source }
}

/// The file behind one device (`None`: the device is absent): a blob from those the
/// request `pinned`; a blob fetched for it is pinned into `pins`.
fn open(
    name: DeviceName,
    source: Option<&DeviceSource>,
    cx: &Context<'_>,
    pinned: &[BlobPin],
    pins: &mut Vec<BlobPin>,
) -> Result<Option<File>, PrepareError> {
    let read = |path: &Path| File::open(path).map_err(|e| open_error(name, &path.display().to_string(), e));
    let file = match source {
        None if name == DeviceName::Stdin => read(Path::new("/dev/null"))?,
        None if matches!(name, DeviceName::Stdout | DeviceName::Stderr) => create(name, &cx.dir.join(name.name()))?,
        None => return Ok(None),
        Some(DeviceSource::Session) => create(name, &cx.dir.join(name.name()))?,
        Some(DeviceSource::Blob { sha256 }) => match pinned.iter().find(|pin| pin.name() == sha256) {
            Some(pin) => read(pin.path())?,
            None => return Err(open_error(name, &format!("blob {sha256}"), std::io::ErrorKind::NotFound.into())),
        },
        Some(DeviceSource::Node { path, sha256 }) if name.is_input() => {
            let mut file = node(name, path, Access::READ, cx)?;
            if let Some(expected) = sha256 {
                let actual = hash_file(&mut file).map_err(|e| open_error(name, path, e))?;
                if actual != *expected {
                    let (path, expected) = (path.clone(), *expected);
                    return Err(PrepareError::Mismatch { name: name.name(), path, expected, actual });
                }
            }
            file
        }
        Some(DeviceSource::Node { path, .. }) => node(name, path, Access::WRITE, cx)?,
        Some(DeviceSource::Url { url, sha256 }) => {
            let fetcher = cx.fetcher.ok_or(PrepareError::Fetch {
                name: name.name(),
                source: FetchError::Client("this agent fetches no URLs".into()),
            })?;
            let fetched = fetcher.fetch(url, *sha256, cx.deadline, cx.timeout_secs, cx.cancel);
            let pin = fetched.map_err(|source| match source {
                FetchError::Cancelled => PrepareError::Killed,
                source => PrepareError::Fetch { name: name.name(), source },
            })?;
            let file = read(pin.path())?;
            pins.push(pin);
            file
        }
    };
    Ok(Some(file))
}

/// Opens a node path as a channel source (an output is created 0644 or truncated).
fn node(name: DeviceName, path: &str, access: Access, cx: &Context<'_>) -> Result<File, PrepareError> {
    let open_error = |path: String, source| PrepareError::Open { name: name.name(), path, source };
    open_path(Path::new(path), access, cx.deadline).map(|(file, _)| file).map_err(|e| match e {
        SourceError::Refused { .. } => PrepareError::Refused { name: name.name(), source: e },
        SourceError::Missing { path } => open_error(path, std::io::ErrorKind::NotFound.into()),
        SourceError::NoReader { path } => {
            open_error(path, std::io::Error::new(std::io::ErrorKind::TimedOut, "no reader opened the FIFO in time"))
        }
        SourceError::Open { path, source } => open_error(path, source),
    })
}

/// Creates or truncates an output file in the session's directory (0644: it holds the
/// guest's output, not a secret of the agent's; a session's own directory is 0700 anyway).
fn create(name: DeviceName, path: &Path) -> Result<File, PrepareError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| open_error(name, &path.display().to_string(), e))
}

/// SHA-256 of a file, read from the start; leaves it at the start again.
fn hash_file(file: &mut File) -> std::io::Result<Sha256> {
    let sha256 = Sha256::of_reader(file)?;
    file.rewind()?;
    Ok(sha256)
}

/// The program at `path` in `image`, pinned, from the cache when this image blob has
/// given it before (and it was not collected since).
fn extract_cached(image: File, path: &str, key: Option<Sha256>, cx: &Context<'_>) -> Result<BlobPin, PrepareError> {
    let cache_key = key.map(|k| (k, path.to_owned()));
    let cache = || cx.extracted.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = cache_key.as_ref().and_then(|k| cache().get(k).copied()).and_then(|p| cx.blobs.pin(&p).ok()) {
        return Ok(found);
    }
    let program = extract(image, path, cx.blobs)?;
    if let Some(k) = cache_key {
        cache().insert(k, *program.name());
    }
    Ok(program)
}

/// Copies the regular file `path` (with or without a leading `./`) out of the tar into
/// the blob store, and pins it.
fn extract(image: File, path: &str, blobs: &Blobs) -> Result<BlobPin, PrepareError> {
    let failed = |cause: String| PrepareError::Extract { path: path.to_owned(), cause };
    let wanted = Path::new(path.strip_prefix("./").unwrap_or(path));
    let mut archive = tar::Archive::new(image);
    for entry in archive.entries().map_err(|e| failed(e.to_string()))? {
        let mut entry = entry.map_err(|e| failed(e.to_string()))?;
        let name = entry.path().map_err(|e| failed(e.to_string()))?.into_owned();
        if name.strip_prefix("./").unwrap_or(&name) != wanted || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut writer = blobs.writer(None).map_err(|e| failed(e.to_string()))?;
        std::io::copy(&mut entry, &mut writer).map_err(|e| failed(error_chain(&e)))?;
        let stored = writer.finish().map_err(|e| failed(e.to_string()))?;
        return blobs.pin(&stored.sha256).map_err(|e| failed(e.to_string()));
    }
    Err(PrepareError::NotInImage { path: path.to_owned() })
}
