//! ELF inspection: decide whether a file is a guest the sandbox will load, and
//! describe the segments the loader maps.
//!
//! [`inspect`] takes the bytes of a `Program` and returns an [`ElfImage`]
//! (entry point and [`Segment`]s, already placed in the guest address map of
//! [`crate::abi`]) or an [`ElfError`] naming the first reason it is refused.
//! Accepted are static x86-64 executables (`ET_EXEC`) and static-PIE
//! (`ET_DYN` with no interpreter, no `DT_NEEDED` and only
//! `R_X86_64_RELATIVE` relocations); [`relocate_static_pie`] applies the
//! relocations of the latter to a copy of the file, which the runtime seals,
//! validates ([`crate::validator`]) and maps, so bytes validated are bytes mapped.
//!
//! The decision that matters: only what the loader uses is trusted, and all of
//! it is checked. Program headers (and, for static-PIE, the dynamic section and
//! its relocation table) are read with goblin's low-level parsers after this
//! module has bounds-checked them; section headers and symbol tables are never
//! read, since the loader ignores them and a hostile file could make them
//! expensive or inconsistent. Every address computation is checked, so hostile
//! input yields an error, never a panic or a wrapped address. Executable
//! segments must start on a page boundary (GNU ld's output always does), so a
//! page-granular mapping exposes no executable bytes the validator did not see.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{self, Dynamic};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self as ph, ProgramHeader};
use goblin::elf::reloc::{RelocSection, R_X86_64_RELATIVE};

use crate::abi::{IMAGE_END, IMAGE_MIN, PAGE_SIZE};

mod error;

pub use self::error::ElfError;

/// Most `PT_LOAD` segments a guest may have (linkers emit three or four).
pub const MAX_LOAD_SEGMENTS: usize = 16;

/// Size of an ELF64 header.
const EHDR_SIZE: usize = 64;
/// Size of an ELF64 program header.
const PHDR_SIZE: usize = 56;
/// Size of an `Elf64_Rela` entry.
const RELA_SIZE: u64 = 24;
/// `DT_RELRSZ` (size of the packed relative relocations), not defined by goblin 0.10.
const DT_RELRSZ: u64 = 35;

/// A guest program that passed [`inspect`]: what the loader needs to map it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    /// Guest address of the first instruction (inside an executable segment).
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments, in program-header order.
    pub segments: Vec<Segment>,
    /// The file is static-PIE: addresses are already shifted to the load base and
    /// the file must go through [`relocate_static_pie`] before it is mapped.
    pub static_pie: bool,
    /// Guest address of the program header table when a loaded segment holds
    /// it (a libc finds its `PT_TLS` there through `AT_PHDR`), else 0.
    pub phdr: u64,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
}

/// One loadable segment, at its guest address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest address of the first byte (congruent to `offset` modulo the page size).
    pub vaddr: u64,
    /// Bytes of guest memory, the tail past `filesz` zero-filled.
    pub memsz: u64,
    /// Offset of the segment's bytes in the file.
    pub offset: u64,
    /// Bytes taken from the file (never more than `memsz`, always inside the file).
    pub filesz: u64,
    /// Mapped readable.
    pub read: bool,
    /// Mapped writable (never together with `exec`).
    pub write: bool,
    /// Mapped executable (its file bytes are what the validator checks).
    pub exec: bool,
}

impl Segment {
    /// The page-rounded guest range `[start, end)` this segment occupies.
    fn page_range(&self) -> (u64, u64) {
        // inspect() checked that the rounded end does not overflow
        let end = self.vaddr.saturating_add(self.memsz);
        (page_floor(self.vaddr), page_ceil(end).unwrap_or(u64::MAX))
    }
}

/// Check that `bytes` is a guest the sandbox will load and describe its segments.
///
/// For static-PIE the segments and entry are shifted so the lowest page lands
/// at [`IMAGE_MIN`]; such an image must be mapped from
/// [`relocate_static_pie`]'s output, not from `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    parse(bytes).map(|parsed| parsed.image)
}

/// Return a copy of `bytes` with every relocation of a static-PIE applied
/// (`load bias + addend`, written at the file offset backing `r_offset`).
///
/// For an `ET_EXEC` image the copy is unchanged, so the runtime can always
/// call this and seal the result. `image` must be what [`inspect`] returns
/// for `bytes`; anything else is [`ElfError::ImageMismatch`].
pub fn relocate_static_pie(bytes: &[u8], image: &ElfImage) -> Result<Vec<u8>, ElfError> {
    let parsed = parse(bytes)?;
    if parsed.image != *image {
        return Err(ElfError::ImageMismatch);
    }
    let mut out = bytes.to_vec();
    for fixup in &parsed.fixups {
        // parse() checked that the 8 bytes lie inside the file
        out[fixup.file_offset..fixup.file_offset + 8].copy_from_slice(&fixup.value.to_le_bytes());
    }
    Ok(out)
}

/// An inspected file and the relocation writes it needs (empty for `ET_EXEC`).
struct Parsed {
    image: ElfImage,
    fixups: Vec<Fixup>,
}

/// One relocation, resolved: write `value` (little-endian) at `file_offset`.
struct Fixup {
    file_offset: usize,
    value: u64,
}

fn parse(bytes: &[u8]) -> Result<Parsed, ElfError> {
    let header = read_header(bytes)?;
    let static_pie = header.e_type == header::ET_DYN;
    let phdrs = read_program_headers(bytes, &header)?;
    check_not_dynamic(bytes, &phdrs)?;

    let mut loads = Vec::new();
    for (index, phdr) in phdrs.iter().enumerate() {
        if phdr.p_type == ph::PT_LOAD {
            check_load(bytes.len(), index, phdr)?;
            if phdr.p_memsz != 0 {
                loads.push((index, phdr));
            }
        }
    }
    // static-PIE moves its lowest page to IMAGE_MIN; ET_EXEC stays where it was linked
    let lowest = loads.iter().map(|(_, p)| page_floor(p.p_vaddr)).min().unwrap_or(0);
    let place = |vaddr: u64| -> Option<u64> {
        if static_pie {
            vaddr.checked_sub(lowest)?.checked_add(IMAGE_MIN)
        } else {
            Some(vaddr)
        }
    };

    let mut segments = Vec::with_capacity(loads.len());
    for &(index, phdr) in &loads {
        let vaddr = place(phdr.p_vaddr).ok_or_else(|| overflow(format!("program header {index}")))?;
        let segment = Segment {
            vaddr,
            memsz: phdr.p_memsz,
            offset: phdr.p_offset,
            filesz: phdr.p_filesz,
            read: phdr.is_read(),
            write: phdr.is_write(),
            exec: phdr.is_executable(),
        };
        check_range(index, &segment)?;
        segments.push(segment);
    }
    let indices: Vec<usize> = loads.iter().map(|(index, _)| *index).collect();
    check_overlap(&indices, &segments)?;

    let entry = place(header.e_entry).ok_or(ElfError::EntryNotExecutable { entry: header.e_entry })?;
    check_entry(entry, &segments)?;
    check_tls(&phdrs)?;
    let phdr = phdr_address(&header, &phdrs).and_then(place).unwrap_or(0);

    // both kinds are refused for DT_NEEDED; only static-PIE has its relocations applied
    let rela = read_dynamic(bytes, &phdrs)?;
    let fixups = match rela {
        Some(table) if static_pie => {
            let bias = i128::from(IMAGE_MIN) - i128::from(lowest);
            resolve_relocations(bytes, &header, &phdrs, &table, bias)?
        }
        _ => Vec::new(),
    };
    let image = ElfImage { entry, segments, static_pie, phdr, phnum: header.e_phnum };
    Ok(Parsed { image, fixups })
}

/// Identification, class, byte order, machine and type, in that order.
fn read_header(bytes: &[u8]) -> Result<Header, ElfError> {
    if bytes.len() < header::SELFMAG || &bytes[..header::SELFMAG] != header::ELFMAG {
        return Err(ElfError::NotElf);
    }
    if bytes.len() < EHDR_SIZE {
        return Err(truncated("ELF header", bytes));
    }
    if bytes[header::EI_CLASS] != header::ELFCLASS64 {
        return Err(ElfError::Not64Bit);
    }
    if bytes[header::EI_DATA] != header::ELFDATA2LSB {
        return Err(ElfError::BigEndian);
    }
    let header = goblin::elf::Elf::parse_header(bytes).map_err(|_| truncated("ELF header", bytes))?;
    if header.e_machine != header::EM_X86_64 {
        let machine = header::machine_to_str(header.e_machine);
        return Err(ElfError::WrongMachine { machine });
    }
    if header.e_type != header::ET_EXEC && header.e_type != header::ET_DYN {
        return Err(ElfError::NotExecutable { kind: header::et_to_str(header.e_type) });
    }
    Ok(header)
}

/// The program header table, bounds-checked before goblin reads it.
fn read_program_headers(bytes: &[u8], header: &Header) -> Result<Vec<ProgramHeader>, ElfError> {
    if usize::from(header.e_phentsize) != PHDR_SIZE {
        return Err(ElfError::BadProgramHeaderSize { size: header.e_phentsize });
    }
    let count = usize::from(header.e_phnum);
    let end = (count as u64)
        .checked_mul(PHDR_SIZE as u64)
        .and_then(|size| size.checked_add(header.e_phoff))
        .ok_or_else(|| overflow("program header table".into()))?;
    if end > bytes.len() as u64 {
        return Err(truncated("program headers", bytes));
    }
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, count, elf64_ctx())
        .map_err(|_| truncated("program headers", bytes))?;
    let loads = phdrs.iter().filter(|p| p.p_type == ph::PT_LOAD).count();
    if loads > MAX_LOAD_SEGMENTS {
        return Err(ElfError::TooManySegments { count: loads });
    }
    Ok(phdrs)
}

/// `PT_INTERP` means a dynamic executable (checked before the segments so a
/// normal gcc output gets the zvm-gcc hint).
fn check_not_dynamic(bytes: &[u8], phdrs: &[ProgramHeader]) -> Result<(), ElfError> {
    if let Some(interp) = phdrs.iter().find(|p| p.p_type == ph::PT_INTERP) {
        let name =
            file_slice(bytes, interp.p_offset, interp.p_filesz).map(c_string).unwrap_or_else(|| "unreadable".into());
        return Err(ElfError::DynamicallyLinked { detail: format!("interpreter {name}") });
    }
    Ok(())
}

/// `PT_TLS` is the template a libc copies into each thread's storage (zvm-cc
/// guests have one). The loader never reads it, the guest's own libc does, so
/// a bad one can only hurt the guest; it is still held to a sane shape so a
/// mistake is a load-time error: at most one, its initialised bytes inside
/// one loaded segment's file bytes, `p_filesz <= p_memsz`, and an alignment
/// that is zero or a power of two.
fn check_tls(phdrs: &[ProgramHeader]) -> Result<(), ElfError> {
    let mut tls = phdrs.iter().filter(|p| p.p_type == ph::PT_TLS);
    let Some(t) = tls.next() else { return Ok(()) };
    let bad = |reason: &str| Err(ElfError::BadTls { reason: reason.into() });
    if tls.next().is_some() {
        return bad("more than one PT_TLS");
    }
    if t.p_filesz > t.p_memsz {
        return bad("its file size exceeds its memory size");
    }
    if t.p_align > 1 && !t.p_align.is_power_of_two() {
        return bad("its alignment is not a power of two");
    }
    let inside = |p: &&ProgramHeader| {
        p.p_type == ph::PT_LOAD
            && p.p_vaddr <= t.p_vaddr
            && t.p_vaddr.checked_add(t.p_filesz).is_some_and(|end| end <= p.p_vaddr.saturating_add(p.p_filesz))
    };
    if t.p_filesz > 0 && !phdrs.iter().any(|p| inside(&p)) {
        return bad("its initialised bytes are not inside one loaded segment's file bytes");
    }
    Ok(())
}

/// Where the program header table is in memory before placement: `PT_PHDR`'s
/// address, or the loaded segment whose file bytes hold the table.
fn phdr_address(header: &Header, phdrs: &[ProgramHeader]) -> Option<u64> {
    if let Some(p) = phdrs.iter().find(|p| p.p_type == ph::PT_PHDR) {
        return Some(p.p_vaddr);
    }
    let size = u64::from(header.e_phnum) * PHDR_SIZE as u64;
    let end = header.e_phoff.checked_add(size)?;
    let load = phdrs.iter().find(|p| {
        p.p_type == ph::PT_LOAD && p.p_offset <= header.e_phoff && end <= p.p_offset.saturating_add(p.p_filesz)
    })?;
    load.p_vaddr.checked_add(header.e_phoff - load.p_offset)
}

/// The checks on one `PT_LOAD` that need no other segment.
fn check_load(len: usize, index: usize, phdr: &ProgramHeader) -> Result<(), ElfError> {
    let what = || format!("program header {index}");
    if phdr.p_filesz > phdr.p_memsz {
        return Err(ElfError::FileszExceedsMemsz { index, filesz: phdr.p_filesz, memsz: phdr.p_memsz });
    }
    let file_end = phdr.p_offset.checked_add(phdr.p_filesz).ok_or_else(|| overflow(what()))?;
    if file_end > len as u64 {
        return Err(ElfError::Truncated { what: format!("data of program header {index}"), len });
    }
    if phdr.p_vaddr % PAGE_SIZE != phdr.p_offset % PAGE_SIZE {
        return Err(ElfError::Misaligned { index, vaddr: phdr.p_vaddr, offset: phdr.p_offset });
    }
    if phdr.is_executable() && phdr.p_vaddr % PAGE_SIZE != 0 {
        // GNU ld starts code on a page; this keeps validated bytes == executable bytes
        return Err(ElfError::UnalignedCode { index, vaddr: phdr.p_vaddr });
    }
    if phdr.is_write() && phdr.is_executable() {
        return Err(ElfError::WritableAndExecutable { index, vaddr: phdr.p_vaddr });
    }
    let mem_end = phdr.p_vaddr.checked_add(phdr.p_memsz).ok_or_else(|| overflow(what()))?;
    page_ceil(mem_end).ok_or_else(|| overflow(what()))?;
    Ok(())
}

/// A segment's pages must lie inside `[IMAGE_MIN, IMAGE_END)`.
fn check_range(index: usize, segment: &Segment) -> Result<(), ElfError> {
    let end = segment.vaddr.checked_add(segment.memsz).and_then(page_ceil);
    let end = end.ok_or_else(|| overflow(format!("program header {index}")))?;
    let start = page_floor(segment.vaddr);
    if start < IMAGE_MIN || end > IMAGE_END {
        return Err(ElfError::OutOfRange { index, start, end });
    }
    Ok(())
}

/// No two segments may share a page: the loader maps whole pages with one protection each.
fn check_overlap(indices: &[usize], segments: &[Segment]) -> Result<(), ElfError> {
    for (i, a) in segments.iter().enumerate() {
        for (j, b) in segments.iter().enumerate().skip(i + 1) {
            let ((a_start, a_end), (b_start, b_end)) = (a.page_range(), b.page_range());
            if a_start < b_end && b_start < a_end {
                return Err(ElfError::Overlap {
                    first: indices[i],
                    second: indices[j],
                    start: a_start.max(b_start),
                    end: a_end.min(b_end),
                });
            }
        }
    }
    Ok(())
}

/// There is code, and execution starts in it.
fn check_entry(entry: u64, segments: &[Segment]) -> Result<(), ElfError> {
    if !segments.iter().any(|s| s.exec) {
        return Err(ElfError::NoExecutableSegment);
    }
    // check_range() bounded vaddr + memsz, so the sum cannot overflow
    let inside = |s: &&Segment| s.exec && s.vaddr <= entry && entry - s.vaddr < s.memsz;
    if segments.iter().find(inside).is_none() {
        return Err(ElfError::EntryNotExecutable { entry });
    }
    Ok(())
}

/// The relocations of a static-PIE, resolved against the load `bias`
/// (`IMAGE_MIN - lowest page`); only `R_X86_64_RELATIVE` is accepted.
fn resolve_relocations(
    bytes: &[u8],
    header: &Header,
    phdrs: &[ProgramHeader],
    table: &RelaTable,
    bias: i128,
) -> Result<Vec<Fixup>, ElfError> {
    let rela = RelocSection::parse(bytes, table.offset, table.size, true, elf64_ctx())
        .map_err(|_| truncated("relocation table", bytes))?;
    let mut fixups = Vec::with_capacity(rela.len());
    for reloc in rela.iter() {
        if reloc.r_type != R_X86_64_RELATIVE || reloc.r_sym != 0 {
            let detail = format!("type {} at {:#x}", reloc.r_type, reloc.r_offset);
            return Err(ElfError::UnsupportedRelocation { detail });
        }
        let file_offset = relocation_target(bytes, header, phdrs, reloc.r_offset)?;
        let value = bias + i128::from(reloc.r_addend.unwrap_or(0));
        let value = u64::try_from(value).map_err(|_| overflow(format!("relocation at {:#x}", reloc.r_offset)))?;
        fixups.push(Fixup { file_offset, value });
    }
    Ok(fixups)
}

/// Where the `DT_RELA` table is in the file.
struct RelaTable {
    offset: usize,
    size: usize,
}

/// Read `PT_DYNAMIC` and locate the RELA table; refuse `DT_NEEDED` and every
/// other relocation table (REL, RELR, PLT).
fn read_dynamic(bytes: &[u8], phdrs: &[ProgramHeader]) -> Result<Option<RelaTable>, ElfError> {
    if phdrs.iter().filter(|p| p.p_type == ph::PT_DYNAMIC).count() > 1 {
        return Err(ElfError::BadDynamic { reason: "more than one PT_DYNAMIC".into() });
    }
    let dynamic = Dynamic::parse(bytes, phdrs, elf64_ctx()).map_err(|_| truncated("dynamic section", bytes))?;
    let Some(dynamic) = dynamic else {
        return Ok(None);
    };
    let tag = |wanted: u64| dynamic.dyns.iter().filter(move |d| d.d_tag == wanted).map(|d| d.d_val);
    if let Some(name) = tag(dynamic::DT_NEEDED).next() {
        let library = needed_name(bytes, phdrs, &dynamic, name).unwrap_or_else(|| "a shared library".into());
        return Err(ElfError::DynamicallyLinked { detail: format!("needs {library}") });
    }
    for (kind, size_tag) in [("REL", dynamic::DT_RELSZ), ("RELR", DT_RELRSZ), ("PLT", dynamic::DT_PLTRELSZ)] {
        if tag(size_tag).any(|size| size != 0) {
            return Err(ElfError::UnsupportedRelocation { detail: format!("{kind} table") });
        }
    }
    let single = |wanted: u64, name: &str| -> Result<Option<u64>, ElfError> {
        let mut values = tag(wanted);
        let first = values.next();
        match values.next() {
            Some(_) => Err(ElfError::BadDynamic { reason: format!("more than one {name}") }),
            None => Ok(first),
        }
    };
    let (addr, size) = (single(dynamic::DT_RELA, "DT_RELA")?, single(dynamic::DT_RELASZ, "DT_RELASZ")?);
    if single(dynamic::DT_RELAENT, "DT_RELAENT")?.is_some_and(|entsize| entsize != RELA_SIZE) {
        return Err(ElfError::BadDynamic { reason: "DT_RELAENT is not 24".into() });
    }
    let size = size.unwrap_or(0);
    if size == 0 {
        return Ok(None);
    }
    let addr = addr.ok_or_else(|| ElfError::BadDynamic { reason: "DT_RELASZ without DT_RELA".into() })?;
    if size % RELA_SIZE != 0 {
        return Err(ElfError::BadDynamic { reason: "DT_RELASZ is not a multiple of 24".into() });
    }
    let offset = file_offset_of(phdrs, addr, size)
        .ok_or_else(|| ElfError::BadDynamic { reason: "relocation table is not backed by file bytes".into() })?;
    Ok(Some(RelaTable { offset, size: size as usize }))
}

/// The file offset a relocation writes: its 8 bytes must be file-backed, in a
/// non-executable segment, and clear of the ELF and program headers (the
/// runtime may parse the relocated copy again).
fn relocation_target(bytes: &[u8], header: &Header, phdrs: &[ProgramHeader], r_offset: u64) -> Result<usize, ElfError> {
    let bad = |problem| ElfError::BadRelocation { offset: r_offset, problem };
    let load = phdrs
        .iter()
        .find(|p| p.p_type == ph::PT_LOAD && p.p_vaddr <= r_offset && r_offset - p.p_vaddr < p.p_memsz)
        .ok_or_else(|| bad("lands outside every segment"))?;
    if load.is_executable() {
        return Err(bad("lands in an executable segment"));
    }
    let offset = file_offset_of(phdrs, r_offset, 8).ok_or_else(|| bad("lands outside the file-backed bytes"))?;
    let headers_end = header.e_phoff + u64::from(header.e_phnum) * PHDR_SIZE as u64; // bounded by the file
    let (start, end) = (offset as u64, offset as u64 + 8);
    if start < EHDR_SIZE as u64 || (start < headers_end && header.e_phoff < end) {
        return Err(bad("overwrites the ELF headers"));
    }
    if offset + 8 > bytes.len() {
        return Err(bad("lands outside the file-backed bytes"));
    }
    Ok(offset)
}

/// File offset of `[vaddr, vaddr + size)` if one `PT_LOAD` backs it all with file bytes.
fn file_offset_of(phdrs: &[ProgramHeader], vaddr: u64, size: u64) -> Option<usize> {
    let end = vaddr.checked_add(size)?;
    let load = phdrs
        .iter()
        .find(|p| p.p_type == ph::PT_LOAD && p.p_vaddr <= vaddr && end <= p.p_vaddr.saturating_add(p.p_filesz))?;
    // check_load() bounded p_offset + p_filesz by the file length
    usize::try_from(load.p_offset + (vaddr - load.p_vaddr)).ok()
}

/// The name of a `DT_NEEDED` library, for the error message only.
fn needed_name(bytes: &[u8], phdrs: &[ProgramHeader], dynamic: &Dynamic, name: u64) -> Option<String> {
    let strtab = dynamic.dyns.iter().find(|d| d.d_tag == dynamic::DT_STRTAB)?.d_val;
    let offset = file_offset_of(phdrs, strtab.checked_add(name)?, 1)?;
    Some(c_string(bytes.get(offset..)?))
}

/// `bytes[offset..offset + size]` if it is inside the file.
fn file_slice(bytes: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    bytes.get(start..end)
}

/// A NUL-terminated string for a message: at most 256 bytes, lossy UTF-8.
fn c_string(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(256)];
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(raw).into_owned()
}

fn elf64_ctx() -> Ctx {
    Ctx::new(Container::Big, Endian::Little)
}

fn page_floor(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

fn page_ceil(addr: u64) -> Option<u64> {
    Some(addr.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

fn truncated(what: &str, bytes: &[u8]) -> ElfError {
    ElfError::Truncated { what: what.into(), len: bytes.len() }
}

fn overflow(what: String) -> ElfError {
    ElfError::Overflow { what }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
