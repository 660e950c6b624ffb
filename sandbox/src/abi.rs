//! The guest ABI: where things live in a guest's address space and how the
//! guest enters the trampoline.
//!
//! Every address here is fixed so guests are deterministic (no ASLR inside the
//! jail, as in ZeroVM) and so the seccomp filter can name the trampoline page
//! by constant. `sandbox/guest/zvm.h` repeats these numbers for C guests and
//! `loader/layout.h` for the loader; a test checks all three agree.
//!
//! ```text
//! 0x0001_0000  trampoline page (r-x, one page, trusted code)
//! 0x0002_0000  manifest area (r--): UserManifest, gate table, channel records, names
//! 0x0040_0000  guest image segments, below 0x8000_0000
//! 0xF000_0000  top of the guest stack (a PROT_NONE guard page below its bottom)
//! 0x1_0000_0000 heap, preallocated from `Memory`, up to 4 GiB
//! 0x100_0000_0000 the loader itself, unmapped before the guest's first instruction
//! ```

/// Address of the trampoline page (`ZVM_TRAMPOLINE` in `zvm.h`).
pub const TRAMPOLINE_ADDR: u64 = 0x1_0000;
/// Size of the trampoline page.
pub const PAGE_SIZE: u64 = 4096;
/// Address of the read-only manifest area (`MANIFEST` in `zvm.h`).
pub const MANIFEST_ADDR: u64 = 0x2_0000;
/// End (exclusive) of the manifest area.
pub const MANIFEST_END: u64 = 0x40_0000;
/// Lowest address a guest image segment may occupy.
pub const IMAGE_MIN: u64 = 0x40_0000;
/// End (exclusive) of the range guest image segments may occupy.
pub const IMAGE_END: u64 = 0x8000_0000;
/// Top of the guest stack (its initial stack pointer is just below).
pub const STACK_TOP: u64 = 0xF000_0000;
/// Start of the heap.
pub const HEAP_ADDR: u64 = 0x1_0000_0000;
/// Largest heap (ZeroVM's 4 GiB `Memory` ceiling).
pub const HEAP_MAX: u64 = 1 << 32;
/// Alignment and granularity of `zvm_jail`/`zvm_unjail` regions.
pub const JAIL_ALIGN: u64 = 64 * 1024;

/// Offsets of the gates inside the trampoline page, in `zvm.h` order.
pub mod gate {
    /// `int64_t zvm_pread(int desc, void *buf, int64_t size, int64_t offset)`
    pub const PREAD: u64 = 0x00;
    /// `int64_t zvm_pwrite(int desc, const void *buf, int64_t size, int64_t offset)`
    pub const PWRITE: u64 = 0x20;
    /// `int64_t zvm_jail(void *addr, int64_t size)`
    pub const JAIL: u64 = 0x40;
    /// `int64_t zvm_unjail(void *addr, int64_t size)`
    pub const UNJAIL: u64 = 0x60;
    /// `int64_t zvm_fork(void)`
    pub const FORK: u64 = 0x80;
    /// `void zvm_exit(int64_t code)`
    pub const EXIT: u64 = 0xA0;
    /// `int64_t zvm_set_fs(void *base)`: not one of ZeroVM's six calls but
    /// the thread pointer a libc's start-up sets (`arch_prctl(ARCH_SET_FS)`,
    /// as NaCl's `tls_init` did for ZeroVM's libc); docs/security.md says why.
    pub const SET_FS: u64 = 0x1E0;
    /// `zvm_fork`'s body (`fork_gate` in `loader/trampoline.S`): the one place
    /// whose `fork` the supervisor takes as `zvm_fork`; anywhere else it kills.
    pub const FORK_BODY: std::ops::Range<u64> = 0x300..0x380;
    /// Where a daemon's copy starts (`zl_fork_resume`).
    pub const FORK_RESUME: u64 = 0x380;
}

/// Bits of a gate-table entry's `flags` (the trampoline reads them).
pub mod gate_flags {
    /// The channel has a readable side.
    pub const READABLE: u32 = 1;
    /// The channel has a writable side.
    pub const WRITABLE: u32 = 2;
    /// Reads take the offset (`pread64`); otherwise sequential (`read`).
    pub const RANDOM_GET: u32 = 4;
    /// Writes take the offset (`pwrite64`); otherwise sequential (`write`).
    pub const RANDOM_PUT: u32 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn define(text: &str, name: &str) -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("#define ") && l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not defined"));
        let v = line.split_whitespace().nth(2).expect("value").trim_end_matches("UL");
        u64::from_str_radix(v.trim_start_matches("0x"), if v.starts_with("0x") { 16 } else { 10 }).expect("number")
    }

    #[test]
    fn zvm_h_matches_the_runtime() {
        let h = include_str!("../guest/zvm.h");
        assert_eq!(define(h, "ZVM_TRAMPOLINE"), TRAMPOLINE_ADDR);
        assert_eq!(define(h, "ZVM_MANIFEST_ADDR"), MANIFEST_ADDR);
        assert_eq!(define(h, "ZVM_JAIL_ALIGN"), JAIL_ALIGN);
        for (name, off) in [
            ("ZVM_GATE_PREAD", gate::PREAD),
            ("ZVM_GATE_PWRITE", gate::PWRITE),
            ("ZVM_GATE_JAIL", gate::JAIL),
            ("ZVM_GATE_UNJAIL", gate::UNJAIL),
            ("ZVM_GATE_FORK", gate::FORK),
            ("ZVM_GATE_EXIT", gate::EXIT),
            ("ZVM_GATE_SET_FS", gate::SET_FS),
        ] {
            assert_eq!(define(h, name), off, "{name}");
        }
    }

    #[test]
    fn loader_layout_matches_the_runtime() {
        let h = include_str!("../loader/layout.h");
        assert_eq!(define(h, "ZL_TRAMPOLINE"), TRAMPOLINE_ADDR);
        assert_eq!(define(h, "ZL_MANIFEST_ADDR"), MANIFEST_ADDR);
        let window = crate::jail::loader::WINDOW;
        assert_eq!(define(h, "ZL_LOADER_BASE"), window.start);
        assert_eq!(define(h, "ZL_LOADER_LEN"), window.end - window.start);
        assert_eq!(define(h, "ZL_MAX_SEGMENTS") as usize, crate::jail::layout::MAX_SEGMENTS);
    }

    #[test]
    fn trampoline_gates_sit_at_the_documented_offsets() {
        let s = include_str!("../loader/trampoline.S");
        let orgs: Vec<u64> = s
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".org 0x"))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
            .collect();
        assert_eq!(&orgs[..6], &[gate::PREAD, gate::PWRITE, gate::JAIL, gate::UNJAIL, gate::FORK, gate::EXIT]);
        assert!(orgs.contains(&gate::SET_FS), "the set-fs gate is placed by .org");
    }

    #[test]
    fn built_loader_maps_one_trampoline_page_and_fits_its_window() {
        let elf = goblin::elf::Elf::parse(crate::jail::loader::LOADER).expect("loader is ELF");
        let loads: Vec<_> =
            elf.program_headers.iter().filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD).collect();
        assert_eq!(loads[0].p_vaddr, TRAMPOLINE_ADDR);
        assert_eq!(loads[0].p_memsz, PAGE_SIZE);
        assert!(loads[0].is_executable() && !loads[0].is_write());
        let window = crate::jail::loader::WINDOW;
        for p in &loads[1..] {
            assert!(p.p_vaddr >= window.start && p.p_vaddr + p.p_memsz <= window.end, "{p:?}");
        }
        let enter = elf.syms.iter().find(|s| elf.strtab.get_at(s.st_name) == Some("zl_enter")).expect("zl_enter");
        assert_eq!(enter.st_value, TRAMPOLINE_ADDR + 0x200, "loader.c calls zl_enter by this address");
        let resume = elf.syms.iter().find(|s| elf.strtab.get_at(s.st_name) == Some("zl_fork_resume"));
        let resume = resume.expect("zl_fork_resume");
        assert_eq!(resume.st_value, TRAMPOLINE_ADDR + gate::FORK_RESUME, "a daemon's copy enters here (layout.h)");
        assert!(orgs_of_trampoline().contains(&gate::FORK_BODY.start), "zvm_fork's body is placed by .org");
    }

    fn orgs_of_trampoline() -> Vec<u64> {
        include_str!("../loader/trampoline.S")
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".org 0x"))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
            .collect()
    }
}
