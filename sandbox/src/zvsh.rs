//! zvsh, the ZeroVM shell front end: a command line becomes a manifest.
//!
//! `zvsh PROGRAM ARGS…` runs PROGRAM with the terminal's stdin, stdout and
//! stderr as its standard channels (streamed live, straight to the kernel).
//! An argument `@FILE` attaches a host file as a channel `/dev/N.<basename>`
//! and passes that name instead (an existing file is a read-only random
//! channel, a new one a write-only output); `@NAME=VALUE` sets an environment
//! variable; a plain argument naming a regular file under the current
//! directory is attached the same way (the seed's `python hello.py`);
//! `--zvm-image TAR` attaches a tar as a read-only channel, and if
//! PROGRAM is a file inside one of the images, that file is the program.
//! Defaults (Timeout 50, Memory 4 GiB, limits 4294967296) can be changed in
//! the first `zvsh.cfg` found in `.`, `~` (as `.zvsh.cfg`) or `/etc`.

use std::fs;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Channel, ChannelError};
use crate::codes::ReturnCode;
use crate::image::{ImageCache, Member};
use crate::jail::memfd::sealed_memfd_from;
use crate::manifest::{self, AccessType, ChannelSource, ChannelSpec, Limits, Manifest, ManifestError};
use crate::program_cache::ProgramCache;
use crate::report::{Report, ValidatorState};
use crate::session::{self, Guest, Options};
use crate::verdict_cache::VerdictCache;

/// zvsh's settings: defaults, then `zvsh.cfg`, then the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `Timeout` in seconds.
    pub timeout: u64,
    /// `Memory` in bytes.
    pub memory: u64,
    /// Limits for every channel.
    pub limits: Limits,
    /// Extra environment from `[env]`.
    pub env: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { timeout: 50, memory: 1 << 32, limits: Limits::UNLIMITED, env: Vec::new() }
    }
}

/// Why zvsh could not build a session.
#[derive(Debug, thiserror::Error)]
pub enum ZvshError {
    /// The configuration file is malformed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A number in the configuration file that the runtime cannot use (`Memory`
    /// out of range is code 12, any other code 14, as in a manifest).
    #[error("{path}: {setting}: {}", source.message)]
    Setting {
        /// The file.
        path: String,
        /// `[section] key = value`, as written.
        setting: String,
        /// The manifest rule it breaks.
        source: ManifestError,
    },
    /// An `--zvm-image` argument is malformed or unreadable.
    #[error("--zvm-image {spec}: {message}")]
    Image {
        /// The argument.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// A channel (a standard descriptor, an `@FILE`, an image) cannot be used.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Local I/O (the nvram channel, a program path).
    #[error("{what}")]
    Io {
        /// What failed.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl ZvshError {
    /// The ZeroVM return code zvsh exits with.
    pub fn code(&self) -> ReturnCode {
        match self {
            ZvshError::Setting { source, .. } => source.code,
            ZvshError::Channel(c) => c.code(),
            _ => ReturnCode::Malformed,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ZvshError {
    let what = what.into();
    move |source| ZvshError::Io { what, source }
}

impl Settings {
    /// Reads the first config file found (`./zvsh.cfg`, `~/.zvsh.cfg`, `/etc/zvsh.cfg`).
    pub fn load() -> Result<Settings, ZvshError> {
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".zvsh.cfg"));
        let candidates = [Some(PathBuf::from("zvsh.cfg")), home, Some(PathBuf::from("/etc/zvsh.cfg"))];
        match candidates.into_iter().flatten().find(|p| p.is_file()) {
            Some(p) => Settings::from_file(&p),
            None => Ok(Settings::default()),
        }
    }

    /// Reads one config file: sections `[manifest]` (Timeout, Memory), `[env]`,
    /// `[limits]` (reads, rbytes, writes, wbytes) and `[fstab]` (accepted,
    /// used once images are mounted as file systems). Each number is held to the
    /// manifest's rule for it where it is read, so none reaches the clock or an
    /// allocation out of range.
    pub fn from_file(path: &Path) -> Result<Settings, ZvshError> {
        let shown = path.display().to_string();
        let err = |message: String| ZvshError::Config { path: shown.clone(), message };
        let ranged = |section: &str, key: &str, value: &str, rule: Result<(), ManifestError>| {
            rule.map_err(|source| ZvshError::Setting {
                path: shown.clone(),
                setting: format!("[{section}] {key} = {value}"),
                source,
            })
        };
        let ini = ini::Ini::load_from_file(path).map_err(|e| err(e.to_string()))?;
        let mut s = Settings::default();
        for (section, props) in ini.iter() {
            for (key, value) in props.iter() {
                let num = || {
                    value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| err(format!("[{}] {key} = {value}: expected a number", section.unwrap_or(""))))
                };
                let sec = section.unwrap_or("");
                match (sec, key) {
                    ("manifest", "Timeout") => {
                        s.timeout = num()?;
                        ranged(sec, key, value, manifest::check_timeout(s.timeout.into(), None))?;
                    }
                    ("manifest", "Memory") => {
                        s.memory = num()?;
                        ranged(sec, key, value, manifest::check_memory(s.memory.into(), None))?;
                    }
                    ("manifest", _) | ("fstab", _) => {}
                    ("env", k) => s.env.push((k.to_string(), value.to_string())),
                    ("limits", key @ ("reads" | "rbytes" | "writes" | "wbytes")) => {
                        let v = num()?;
                        ranged(sec, key, value, manifest::check_limit(key, v, None))?;
                        let l = &mut s.limits;
                        *match key {
                            "reads" => &mut l.gets,
                            "rbytes" => &mut l.get_size,
                            "writes" => &mut l.puts,
                            _ => &mut l.put_size,
                        } = v;
                    }
                    (_, k) => {
                        return Err(err(format!(
                            "unknown setting [{sec}] {k}; known sections: manifest, env, limits, fstab"
                        )))
                    }
                }
            }
        }
        Ok(s)
    }
}

/// A zvsh command line, parsed.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// `--zvm-image PATH[,MOUNTPOINT[,ro|rw]]`.
    pub images: Vec<String>,
    /// The program (a path, or a file inside an image).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// A session ready to run, with the manifest that describes it.
pub struct Prepared {
    /// The guest.
    pub guest: Guest,
    /// Its manifest (what `--zvm-save-dir` keeps and failures print).
    pub manifest: Manifest,
}

fn std_channel(alias: &str, fd: i32, limits: Limits) -> Result<(ChannelSpec, Channel), ZvshError> {
    let l = if alias == "/dev/stdin" {
        Limits { puts: 0, put_size: 0, ..limits }
    } else {
        Limits { gets: 0, get_size: 0, ..limits }
    };
    let ch = Channel::inherit(alias, AccessType::SeqGetSeqPut, l, fd)?;
    Ok((ChannelSpec::new(ChannelSource::Path(alias.into()), alias.to_string(), AccessType::SeqGetSeqPut, l), ch))
}

/// `/dev/nvram`, ZRT's configuration channel: its `[fstab]` names each image's
/// channel and mount point, and zvm-cc's runtime mounts them (classic zvm-gcc
/// guests ignore it). A sealed memfd, read-only to the guest (the manifest
/// names it `/dev/nvram`, as it does the standard channels).
fn nvram(fstab: &str, limits: Limits) -> Result<(ChannelSpec, Channel), ZvshError> {
    let text = format!("[fstab]\n{fstab}");
    let fd = sealed_memfd_from(c"zerolab-nvram", |f| {
        f.write_all(text.as_bytes())?;
        f.rewind().map(drop)
    })
    .map_err(io_err("cannot write the nvram channel"))?;
    let alias = "/dev/nvram";
    let limits = Limits { puts: 0, put_size: 0, ..limits };
    let ch = Channel::from_fd(alias, AccessType::SeqGetSeqPut, limits, fd)
        .map_err(io_err("cannot use the nvram channel"))?;
    let spec = ChannelSpec::new(ChannelSource::Path(alias.into()), alias.to_string(), AccessType::SeqGetSeqPut, limits);
    Ok((spec, ch))
}

/// Finds `name` inside the tar open as `tar` (the image's channel, already
/// opened and checked) and returns its bytes' range there, which the session
/// loads straight from the image (nothing is copied out). The channel's file
/// position is shared, so it is put back at the start afterwards.
fn member_of_tar(tar: &Channel, name: &str) -> std::io::Result<Option<Member>> {
    let mut file = fs::File::from(tar.fd.try_clone()?);
    let found = find_in_tar(&mut file, name);
    file.rewind()?;
    found
}

/// Looks for `name` (or `bin/name`) among the tar's members, skipping over
/// their data, and returns the range of its bytes. A symbolic or hard link is
/// followed inside the tar (at most [`MAX_LINKS`] of them), so a busybox
/// image's `bin/sort -> busybox` runs busybox. Only a regular file is a
/// program.
fn find_in_tar(file: &mut fs::File, name: &str) -> std::io::Result<Option<Member>> {
    let mut wanted = vec![PathBuf::from(name), Path::new("bin").join(name)];
    for _ in 0..=MAX_LINKS {
        file.rewind()?;
        let mut archive = tar::Archive::new(&mut *file);
        let mut next = None;
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let path = entry.path()?.into_owned();
            let clean = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
            if !wanted.contains(&clean) {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                let base = if kind.is_symlink() { clean.parent().unwrap_or(Path::new("")) } else { Path::new("") };
                next = Some(normalize(&base.join(target)));
                break;
            }
            if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
                return Ok(None);
            }
            return Ok(Some(Member { offset: entry.raw_file_position(), len: entry.size() }));
        }
        match next {
            Some(target) => wanted = vec![target],
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// How many links [`find_in_tar`] follows before giving up (the runtime's own limit).
const MAX_LINKS: usize = 16;

/// A path inside an image with `.` and `..` resolved and no leading `/`
/// (`..` stops at the image's root).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(part) => out.push(part),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Command {
    /// Builds the guest and its manifest.
    pub fn prepare(&self, settings: &Settings) -> Result<Prepared, ZvshError> {
        let mut specs = Vec::new();
        let mut channels = Vec::new();
        for (alias, fd) in [("/dev/stdin", 0), ("/dev/stdout", 1), ("/dev/stderr", 2)] {
            let (s, c) = std_channel(alias, fd, settings.limits)?;
            specs.push(s);
            channels.push(c);
        }
        let mut program = PathBuf::from(&self.program);
        let mut program_member = None;
        // Out-of-range settings from code (not a file) are refused by `session::spawn`
        // with their code; until then the deadline is clamped so it cannot overflow.
        let deadline = Instant::now() + Duration::from_secs(settings.timeout.min(manifest::MAX_TIMEOUT));
        let mut n = 0;
        let mut attach = |path: PathBuf,
                          readable: bool,
                          specs: &mut Vec<ChannelSpec>,
                          channels: &mut Vec<Channel>|
         -> Result<String, ZvshError> {
            n += 1;
            let base = path.file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
            let alias = format!("/dev/{n}.{base}");
            let limits = if readable {
                Limits { puts: 0, put_size: 0, ..settings.limits }
            } else {
                Limits { gets: 0, get_size: 0, ..settings.limits }
            };
            let access = if readable { AccessType::RandGetRandPut } else { AccessType::SeqGetSeqPut };
            let abs = std::path::absolute(&path).map_err(io_err(format!("cannot resolve {}", path.display())))?;
            let spec = ChannelSpec::new(ChannelSource::Path(abs), alias.clone(), access, limits);
            let ch = Channel::open(&spec, deadline)?;
            specs.push(spec);
            channels.push(ch);
            Ok(alias)
        };
        let mut fstab = String::new();
        for spec in &self.images {
            let mut parts = spec.split(',');
            let tar = PathBuf::from(parts.next().unwrap_or_default());
            let mount = parts.next().filter(|m| !m.is_empty()).unwrap_or("/");
            let mode = parts.next().unwrap_or("ro");
            if !mount.starts_with('/') {
                return Err(ZvshError::Image {
                    spec: spec.clone(),
                    message: format!("mount point {mount} is not an absolute path"),
                });
            }
            if !matches!(mode, "ro" | "rw") {
                return Err(ZvshError::Image { spec: spec.clone(), message: format!("mode {mode} is not ro or rw") });
            }
            if !tar.is_file() {
                return Err(ZvshError::Image { spec: spec.clone(), message: "no such file".into() });
            }
            // Attached first, so a tar the channel rules refuse is refused
            // (code 93) before anything is read from it, and the program is
            // read from the descriptor that was checked.
            let alias = attach(tar, true, &mut specs, &mut channels)?;
            fstab.push_str(&format!("channel={alias}, mountpoint={mount}, access={mode}\n"));
            if program_member.is_none() && !program.exists() {
                let image = channels.last().expect("the image was just attached");
                let spec_path = specs.last().expect("the image was just attached");
                if let Some(found) = member_of_tar(image, &self.program)
                    .map_err(|e| ZvshError::Image { spec: spec.clone(), message: e.to_string() })?
                {
                    if let ChannelSource::Path(tar) = &spec_path.source {
                        program = tar.clone();
                        program_member = Some(found);
                    }
                }
            }
        }
        if !fstab.is_empty() {
            let (spec, ch) = nvram(&fstab, settings.limits)?;
            specs.push(spec);
            channels.push(ch);
        }
        let mut args = vec![self.program.clone()];
        let mut env = settings.env.clone();
        for a in &self.args {
            match a.strip_prefix('@') {
                Some(kv) if is_env_assignment(kv) => {
                    let (k, v) = kv.split_once('=').expect("checked");
                    env.push((k.to_string(), v.to_string()));
                }
                Some(file) if !file.is_empty() => {
                    let path = PathBuf::from(file);
                    let readable = path.exists();
                    args.push(attach(path, readable, &mut specs, &mut channels)?);
                }
                None if names_local_file(a) => args.push(attach(PathBuf::from(a), true, &mut specs, &mut channels)?),
                _ => args.push(a.clone()),
            }
        }
        let program = std::path::absolute(&program).unwrap_or(program);
        let manifest = Manifest {
            program: program.clone(),
            memory: settings.memory,
            memory_etag: false,
            timeout: settings.timeout,
            channels: specs,
            node: None,
            name_server: None,
            job: None,
            etag: None,
            args: args.clone(),
            env: env.clone(),
        };
        let guest = Guest {
            program,
            program_member,
            memory: settings.memory,
            timeout: Duration::from_secs(settings.timeout),
            channels,
            args,
            env,
        };
        Ok(Prepared { guest, manifest })
    }
}

/// Whether a plain argument names a regular file under the current directory
/// (a relative path without `..`): the seed's `python hello.py`. zvsh attaches
/// it as `@FILE` would, since a guest can open nothing else on the host.
fn names_local_file(arg: &str) -> bool {
    let path = Path::new(arg);
    !arg.starts_with('-')
        && path.is_relative()
        && path.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
        && fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn is_env_assignment(s: &str) -> bool {
    let Some((k, _)) = s.split_once('=') else { return false };
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The verdict cache zvsh shares across runs (`$XDG_CACHE_HOME/zerolab/verdicts`)
/// and, for root, its validated programs ([`ProgramCache::default_dir`]).
pub fn default_options() -> Options {
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("zerolab").join("verdicts"));
    // One session per process: shared namespaces would cost more than they save.
    let programs = ProgramCache::default_dir().map(ProgramCache::new);
    Options {
        verdicts: Arc::new(VerdictCache::new(dir)),
        images: Arc::new(ImageCache::with_disk(programs)),
        share_namespaces: false,
        ..Options::default()
    }
}

/// Runs a prepared session and returns its report.
pub fn run(prepared: Prepared, opts: &Options) -> Report {
    match session::spawn(prepared.guest, opts) {
        Ok(s) => s.wait(),
        Err(e) => e.into_report(),
    }
}

/// What zvsh prints to stderr when a session fails.
pub fn failure_text(manifest: &str, report: &Report) -> String {
    format!("{manifest}\n{report}\nERROR: ZeroVM return code is {}\n", report.return_code)
}

/// A report for zvsh's own errors (bad config, unreadable image, a refused
/// channel...).
pub fn error_report(e: &ZvshError) -> Report {
    Report::failed(e.code(), ValidatorState::NotRun, session::error_chain(e))
}
