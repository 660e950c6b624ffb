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
