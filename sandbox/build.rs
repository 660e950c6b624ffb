//! Builds the guest loader (`loader/`) with the system C compiler.
//!
//! The loader is a tiny freestanding static program: the jail execs it in a
//! fresh address space, it maps the guest and installs the seccomp filter,
//! and the trampoline page it carries stays behind as the guest's only door
//! to the kernel. The runtime embeds the binary with `include_bytes!`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    for f in ["loader.c", "trampoline.S", "loader.ld", "layout.h"] {
        println!("cargo:rerun-if-changed=loader/{f}");
    }
    println!("cargo:rerun-if-env-changed=CC");
    let target = out.join("zvm-loader");
    let status = Command::new(&cc)
        .args([
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-fpie",
            "-no-pie",
            "-Os",
            "-fno-stack-protector",
            "-mgeneral-regs-only",
            "-fno-builtin",
            "-fcf-protection=none",
            "-fno-asynchronous-unwind-tables",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-T,loader/loader.ld",
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-o",
        ])
        .arg(&target)
        .args(["loader/loader.c", "loader/trampoline.S"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the guest loader with `{cc}` failed ({s}); install gcc (apt-get install gcc)"),
        Err(e) => {
            panic!("cannot run the C compiler `{cc}` to build the guest loader: {e}; install gcc (apt-get install gcc)")
        }
    }
}
