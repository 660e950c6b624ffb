//! ELF fixtures built with gcc at test time, and helpers to patch them.

use std::process::Command;
use std::sync::OnceLock;

/// A static guest: code, a pointer in `.data` (a RELATIVE relocation when
/// linked as static-PIE) and `.bss`.
pub(crate) const GUEST_ASM: &str = "
    .globl _start
    .text
    _start:
        lea ptr(%rip), %rax
        mov (%rax), %rax
        xor %edi, %edi
        ud2
    .data
    ptr: .quad _start
    .bss
    buf: .zero 8192
";

/// Build `source` (file name `name`, so gcc picks the language) with `flags`.
pub(crate) fn build(name: &str, source: &str, flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("create temp dir");
    let src = dir.path().join(name);
    let out = dir.path().join("prog");
    std::fs::write(&src, source).expect("write fixture source");
    let result = Command::new("gcc").args(flags).arg(&src).arg("-o").arg(&out).output();
    let result = result.expect("run gcc (the ELF fixtures need gcc on PATH)");
    assert!(result.status.success(), "gcc {flags:?} failed: {}", String::from_utf8_lossy(&result.stderr));
    std::fs::read(&out).expect("read fixture")
}

/// `GUEST_ASM` as a static non-PIE executable (text at 0x401000).
pub(crate) fn static_exec() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| build("guest.S", GUEST_ASM, &["-static", "-nostdlib", "-fno-pie", "-no-pie"]))
}

/// `GUEST_ASM` as static-PIE (linked at 0, text at 0x1000).
pub(crate) fn static_pie() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| build("guest.S", GUEST_ASM, &["-static-pie", "-nostdlib", "-fpie"]))
}

/// A plain `gcc` C program: dynamically linked PIE.
pub(crate) fn dynamic() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| build("prog.c", "int main(void) { return 0; }\n", &[]))
}

pub(crate) fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// File offset of field `field` (byte offset inside `Elf64_Phdr`) of program header `index`.
pub(crate) fn phdr(bytes: &[u8], index: usize, field: usize) -> usize {
    get_u64(bytes, 32) as usize + index * 56 + field
}

/// `Elf64_Phdr` field offsets.
pub(crate) const P_TYPE: usize = 0;
pub(crate) const P_FLAGS: usize = 4;
pub(crate) const P_OFFSET: usize = 8;
pub(crate) const P_VADDR: usize = 16;
pub(crate) const P_FILESZ: usize = 32;
pub(crate) const P_MEMSZ: usize = 40;
pub(crate) const P_ALIGN: usize = 48;
/// `Elf64_Ehdr` field offsets.
pub(crate) const E_TYPE: usize = 16;
pub(crate) const E_MACHINE: usize = 18;
pub(crate) const E_ENTRY: usize = 24;
pub(crate) const E_PHOFF: usize = 32;
pub(crate) const E_PHENTSIZE: usize = 54;
