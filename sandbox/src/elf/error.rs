//! Why a file is not a loadable guest: [`ElfError`], one variant per check of
//! [`inspect`](super::inspect) and [`relocate_static_pie`](super::relocate_static_pie).

use super::MAX_LOAD_SEGMENTS;
use crate::abi::{IMAGE_END, IMAGE_MIN};
use crate::codes::ReturnCode;

/// Where zvm-gcc lives, for the "dynamically linked" hint.
const ZVM_GCC_HINT: &str = "build it with zvm-gcc (sandbox/guest/zvm-gcc prog.c -o prog)";

/// Why a file is not a loadable guest. Every variant is [`ReturnCode::BadExecutable`].
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file does not start with the ELF magic.
    #[error("not an ELF executable")]
    NotElf,
    /// `EI_CLASS` is not ELFCLASS64.
    #[error("32-bit ELF is not supported; guests must be x86-64")]
    Not64Bit,
    /// `EI_DATA` is not little-endian.
    #[error("big-endian ELF is not supported; guests must be x86-64")]
    BigEndian,
    /// Some structure lies (partly) past the end of the file.
    #[error("truncated file: {what} extends past the end of the file ({len} bytes)")]
    Truncated {
        /// The structure, e.g. "program headers" or "data of program header 2".
        what: String,
        /// Length of the file.
        len: usize,
    },
    /// `e_phentsize` is not the size of an ELF64 program header.
    #[error("program header size is {size}, expected 56")]
    BadProgramHeaderSize {
        /// The `e_phentsize` found.
        size: u16,
    },
    /// `e_machine` is not x86-64.
    #[error("wrong machine {machine}; guests must be x86-64")]
    WrongMachine {
        /// goblin's name for the machine, e.g. "AARCH64".
        machine: &'static str,
    },
    /// `e_type` is neither `ET_EXEC` nor a static-PIE `ET_DYN`.
    #[error("ELF type {kind} is not an executable")]
    NotExecutable {
        /// goblin's name for the type, e.g. "REL".
        kind: &'static str,
    },
    /// The file has `PT_INTERP` or `DT_NEEDED`.
    #[error("program is dynamically linked ({detail}); {hint}", hint = ZVM_GCC_HINT)]
    DynamicallyLinked {
        /// "interpreter /lib64/ld-linux-x86-64.so.2" or "needs libc.so.6".
        detail: String,
    },
    /// The `PT_TLS` header is malformed.
    #[error("bad thread-local storage header: {reason}")]
    BadTls {
        /// What is wrong with it.
        reason: String,
    },
    /// More than [`MAX_LOAD_SEGMENTS`] `PT_LOAD` headers.
    #[error("too many loadable segments ({count}, at most {max})", max = MAX_LOAD_SEGMENTS)]
    TooManySegments {
        /// The number of `PT_LOAD` headers.
        count: usize,
    },
    /// `p_filesz > p_memsz`.
    #[error("program header {index}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileszExceedsMemsz {
        /// Index in the program header table.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// `p_vaddr` and `p_offset` differ modulo the page size, so the file cannot be mapped.
    #[error("program header {index}: address {vaddr:#x} and file offset {offset:#x} differ modulo the page size")]
    Misaligned {
        /// Index in the program header table.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_offset`.
        offset: u64,
    },
    /// An executable segment does not start on a page boundary, so its first
    /// page would also hold unvalidated bytes.
    #[error("program header {index}: executable segment at {vaddr:#x} does not start on a page boundary")]
    UnalignedCode {
        /// Index in the program header table.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
    },
    /// A segment is both writable and executable.
    #[error("program header {index} at {vaddr:#x} is both writable and executable")]
    WritableAndExecutable {
        /// Index in the program header table.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
    },
    /// Two segments share a page.
    #[error("program headers {first} and {second} overlap (both use pages in {start:#x}..{end:#x})")]
    Overlap {
        /// Index of the earlier program header.
        first: usize,
        /// Index of the later program header.
        second: usize,
        /// Start of the overlapping pages.
        start: u64,
        /// End of the overlapping pages.
        end: u64,
    },
    /// A segment's pages fall outside the guest image range.
    #[error("program header {index} ({start:#x}..{end:#x}) lies outside the guest image range {min:#x}..{max:#x}", min = IMAGE_MIN, max = IMAGE_END)]
    OutOfRange {
        /// Index in the program header table.
        index: usize,
        /// Page-rounded guest start.
        start: u64,
        /// Page-rounded guest end.
        end: u64,
    },
    /// No `PT_LOAD` segment is executable.
    #[error("no executable segment")]
    NoExecutableSegment,
    /// The entry point is not inside an executable segment.
    #[error("entry point {entry:#x} is not inside an executable segment")]
    EntryNotExecutable {
        /// `e_entry`, shifted to the load base for static-PIE.
        entry: u64,
    },
    /// An address or size computation overflows.
    #[error("address arithmetic overflows in {what}")]
    Overflow {
        /// What was being computed, e.g. "program header 3".
        what: String,
    },
    /// A relocation kind the sandbox does not apply (only `R_X86_64_RELATIVE` in `DT_RELA` is).
    #[error("unsupported relocation: {detail}")]
    UnsupportedRelocation {
        /// E.g. "type 1 at 0x3000" or "REL table".
        detail: String,
    },
    /// A `R_X86_64_RELATIVE` relocation writes where it must not.
    #[error("relocation at {offset:#x} {problem}")]
    BadRelocation {
        /// `r_offset` (link-time address).
        offset: u64,
        /// E.g. "lands in an executable segment".
        problem: &'static str,
    },
    /// The dynamic section is inconsistent.
    #[error("malformed dynamic section: {reason}")]
    BadDynamic {
        /// What is wrong with it.
        reason: String,
    },
    /// [`relocate_static_pie`](super::relocate_static_pie) was given an image that
    /// [`inspect`](super::inspect) does not return for these bytes.
    #[error("image description does not match the file")]
    ImageMismatch,
}

impl ElfError {
    /// The ZeroVM return code for this error: always [`ReturnCode::BadExecutable`].
    pub fn code(&self) -> ReturnCode {
        ReturnCode::BadExecutable
    }
}
