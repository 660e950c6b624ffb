//! Guests built from C once per run with `guest/zvm-gcc`, POSIX guests with
//! `guest/zvm-cc` (and two with plain `gcc`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

fn sandbox_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zvm-guests");
        fs::create_dir_all(&dir).expect("create the guest directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod the guest directory");
        dir
    })
}

/// The guest built from `tests/guests/NAME.c`, `guest/examples/NAME.c`, or the
/// example jobs' `examples/wordcount/NAME.c` and `examples/pipeline/NAME.c` (built
/// once per run, on first use).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = BUILT.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_default().clone();
    cell.get_or_init(|| {
        let src = ["tests/guests", "guest/examples", "../examples/wordcount", "../examples/pipeline"]
            .iter()
            .map(|d| sandbox_dir().join(d).join(format!("{name}.c")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no guest source {name}.c"));
        compile(Command::new(sandbox_dir().join("guest/zvm-gcc")).arg("-O2").arg(&src), name)
    })
    .clone()
}

/// The POSIX guest built from `tests/guests/posix/NAME.c` with `guest/zvm-cc`
/// (against the runtime's musl, which the first build makes and caches).
pub fn posix_guest(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = BUILT.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_default().clone();
    cell.get_or_init(|| {
        let src = sandbox_dir().join("tests/guests/posix").join(format!("{name}.c"));
        assert!(src.is_file(), "no POSIX guest source {}", src.display());
        compile(
            Command::new(sandbox_dir().join("guest/zvm-cc")).args(["-O2", "-Wall", "-Werror"]).arg(&src),
            &format!("posix-{name}"),
        )
    })
    .clone()
}

/// `tests/guests/posix/libc.c` built natively with `gcc -DNATIVE`: the libc's
/// own string functions (`guest/posix/musl/`) tested outside the jail, where
/// a page can be made inaccessible.
pub fn native_libc_test() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = sandbox_dir().join("tests/guests/posix/libc.c");
            compile(Command::new("gcc").args(["-O2", "-Wall", "-Werror", "-DNATIVE"]).arg(&src), "native-libc")
        })
        .clone()
}

/// The zvm.h guest `tests/guests/NAME.c` built with `guest/zvm-cc` instead of
/// zvm-gcc (musl and the runtime linked in, the SDK's helpers from
/// `guest/crt/zvmlib.c`): the escape cases must behave the same either way.
pub fn zvm_cc_guest(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = BUILT.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_default().clone();
    cell.get_or_init(|| {
        let src = sandbox_dir().join("tests/guests").join(format!("{name}.c"));
        let mut cmd = Command::new(sandbox_dir().join("guest/zvm-cc"));
        cmd.arg("-O2").arg(&src).arg(sandbox_dir().join("guest/crt/zvmlib.c"));
        compile(&mut cmd, &format!("cc-{name}"))
    })
    .clone()
}

/// `python.tar` from `guest/posix/build-python` (CPython from Debian's source,
/// built with zvm-cc and cached; the first build takes several minutes).
pub fn python_tar() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| posix_image("build-python", "python.tar")).clone()
}

/// `lua.tar` from `guest/posix/build-lua` (Lua 5.4 from Debian's source, cached).
pub fn lua_tar() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| posix_image("build-lua", "lua.tar")).clone()
}

/// `busybox.tar` from `guest/posix/build-busybox` (busybox from Debian's
/// source with its text applets, cached).
pub fn busybox_tar() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| posix_image("build-busybox", "busybox.tar")).clone()
}

/// Runs `guest/posix/SCRIPT` (which builds once and prints its cache
/// directory) and returns the image `TAR` in that directory.
fn posix_image(script: &str, tar: &str) -> PathBuf {
    let out = Command::new(sandbox_dir().join("guest/posix").join(script)).output().expect("run the build script");
    assert!(out.status.success(), "{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("a path").trim()).join(tar)
}

/// A hello program built with the host's plain `gcc`: dynamically linked.
pub fn dynamic_elf() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = guest_dir().join(format!(".dynamic-{}.c", std::process::id()));
            fs::write(&src, "int main(void) { return 0; }\n").expect("write dynamic.c");
            let out = compile(Command::new("gcc").arg(&src), "host-dynamic");
            let _ = fs::remove_file(&src);
            out
        })
        .clone()
}

/// A static program built with plain `gcc -static` against glibc.
pub fn static_libc_elf() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = guest_dir().join(format!(".static-{}.c", std::process::id()));
            fs::write(&src, "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
                .expect("write static.c");
            let out = compile(Command::new("gcc").arg("-static").arg(&src), "host-static");
            let _ = fs::remove_file(&src);
            out
        })
        .clone()
}

fn compile(cmd: &mut Command, name: &str) -> PathBuf {
    let out = guest_dir().join(name);
    let tmp = guest_dir().join(format!(".{name}.{}", std::process::id()));
    let result = cmd.arg("-o").arg(&tmp).output().expect("run the compiler");
    assert!(result.status.success(), "building {name} failed:\n{}", String::from_utf8_lossy(&result.stderr));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod guest");
    fs::rename(&tmp, &out).expect("move guest into place");
    out
}
