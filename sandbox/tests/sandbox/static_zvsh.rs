//! The `zvsh` users get is the fast one: `cargo build-zvsh`, the README's command
//! (an alias in `.cargo/config.toml`), builds a statically linked `zvsh`, which
//! starts without the dynamic loader's work (mapping libc and libgcc_s, symbol
//! lookups, relocations: ~0.5 ms of a 3 ms start here), and that binary runs guests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{guest, Lab};

/// Runs `cargo build-zvsh` from the workspace and returns the binary it reports.
fn build_documented_zvsh() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace holds the sandbox");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // RUSTFLAGS in the environment would replace the alias's flags (cargo's rule).
    let out = Command::new(cargo)
        .current_dir(workspace)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build-zvsh", "--quiet", "--message-format=json"])
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo build-zvsh failed:\n{}{}", stdout, String::from_utf8_lossy(&out.stderr));
    let key = "\"executable\":\"";
    let exe = stdout
        .lines()
        .filter_map(|l| Some(&l[l.find(key)? + key.len()..]))
        .map(|rest| PathBuf::from(&rest[..rest.find('"').expect("closing quote")]))
        .find(|p| p.file_name().is_some_and(|n| n == "zvsh"))
        .unwrap_or_else(|| panic!("cargo build-zvsh reported no zvsh executable:\n{stdout}"));
    assert!(exe.is_file(), "{} is not a file", exe.display());
    exe
}

#[test]
fn the_documented_zvsh_build_is_static_and_runs_guests() {
    let zvsh = build_documented_zvsh();
    let bytes = std::fs::read(&zvsh).expect("read zvsh");
    let elf = goblin::elf::Elf::parse(&bytes).expect("zvsh is an ELF file");
    assert_eq!(elf.interpreter, None, "{} asks for a dynamic loader: it is not static", zvsh.display());
    assert!(elf.libraries.is_empty(), "{} needs shared libraries {:?}", zvsh.display(), elf.libraries);
    let lab = Lab::new();
    let out = lab.zvsh_at(&zvsh).arg(guest("hello")).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");
    let data = b"through the static zvsh\n".repeat(4096);
    let out = lab.zvsh_at(&zvsh).arg(guest("cat")).stdin(data.clone()).run().expect_code(0);
    assert!(out.stdout == data, "the static zvsh's cat changed the data");
}
