//! Tests of ELF inspection and static-PIE relocation.

use super::fixtures::*;
use super::*;
use crate::codes::ReturnCode;

const R: u32 = ph::PF_R;
const RX: u32 = ph::PF_R | ph::PF_X;
const RWX: u32 = ph::PF_R | ph::PF_W | ph::PF_X;

/// A minimal ELF64 executable with the given `PT_LOAD`s `(flags, vaddr, offset, filesz, memsz)`.
fn synthesize(loads: &[(u32, u64, u64, u64, u64)], entry: u64) -> Vec<u8> {
    let data_end = loads.iter().map(|l| l.2 + l.3).max().unwrap_or(0) as usize;
    let mut bytes = vec![0u8; (64 + 56 * loads.len()).max(data_end)];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4..7].copy_from_slice(&[2, 1, 1]);
    put_u16(&mut bytes, E_TYPE, header::ET_EXEC);
    put_u16(&mut bytes, E_MACHINE, header::EM_X86_64);
    put_u64(&mut bytes, E_ENTRY, entry);
    put_u64(&mut bytes, E_PHOFF, 64);
    put_u16(&mut bytes, E_PHENTSIZE, 56);
    put_u16(&mut bytes, 56, loads.len() as u16);
    for (i, &(flags, vaddr, offset, filesz, memsz)) in loads.iter().enumerate() {
        let at = 64 + i * 56;
        put_u32(&mut bytes, at + P_TYPE, ph::PT_LOAD);
        put_u32(&mut bytes, at + P_FLAGS, flags);
        put_u64(&mut bytes, at + P_OFFSET, offset);
        put_u64(&mut bytes, at + P_VADDR, vaddr);
        put_u64(&mut bytes, at + P_FILESZ, filesz);
        put_u64(&mut bytes, at + P_MEMSZ, memsz);
    }
    bytes
}

/// File offset of the static-PIE fixture's single `.rela.dyn` entry.
fn rela_entry(bytes: &[u8]) -> usize {
    let elf = goblin::elf::Elf::parse(bytes).unwrap();
    let section = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".rela.dyn"));
    section.expect("static-PIE fixture has .rela.dyn").sh_offset as usize
}

/// File offset of the `d_val` of the first dynamic entry with `tag`.
fn dyn_value(bytes: &[u8], tag: u64) -> usize {
    let elf = goblin::elf::Elf::parse(bytes).unwrap();
    let dynamic = elf.program_headers.iter().find(|p| p.p_type == ph::PT_DYNAMIC).unwrap();
    let start = dynamic.p_offset as usize;
    (start..start + dynamic.p_filesz as usize).step_by(16).find(|&at| get_u64(bytes, at) == tag).unwrap() + 8
}

#[test]
fn accepts_thread_local_storage_inside_the_data_segment() {
    let data = inspect(static_exec()).unwrap().segments[2];
    let bytes = apply(
        static_exec(),
        &[
            (At::Phdr32(3, P_TYPE), ph::PT_TLS as u64),
            (At::Phdr64(3, P_VADDR), data.vaddr),
            (At::Phdr64(3, P_FILESZ), data.filesz.min(8)),
            (At::Phdr64(3, P_MEMSZ), 64),
            (At::Phdr64(3, P_ALIGN), 8),
        ],
    );
    inspect(&bytes).expect("a PT_TLS template inside the data segment is accepted");
}

#[test]
fn program_headers_are_found_in_the_first_segment() {
    let image = inspect(static_exec()).unwrap();
    assert_eq!(image.phdr, 0x40_0040, "e_phoff 64 in the segment at 0x400000, file offset 0");
    assert_eq!(image.phnum, goblin::elf::Elf::parse(static_exec()).unwrap().header.e_phnum);
}

#[test]
fn accepts_static_executable_built_by_gcc() {
    let image = inspect(static_exec()).unwrap();
    assert!(!image.static_pie);
    assert_eq!(image.entry, 0x40_1000);
    let layout: Vec<_> = image.segments.iter().map(|s| (s.vaddr, s.read, s.write, s.exec)).collect();
    assert_eq!(
        layout,
        [(0x40_0000, true, false, false), (0x40_1000, true, false, true), (0x40_2000, true, true, false)]
    );
    let data = image.segments[2];
    assert_eq!((data.offset, data.filesz, data.memsz), (0x2000, 8, 0x2008));
}

#[test]
fn accepts_static_pie_shifted_to_image_min() {
    let image = inspect(static_pie()).unwrap();
    assert!(image.static_pie);
    assert_eq!(image.entry, IMAGE_MIN + 0x1000);
    assert_eq!(image.segments[0].vaddr, IMAGE_MIN);
    assert_eq!(image.segments[1].vaddr, IMAGE_MIN + 0x1000);
    assert!(image.segments[1].exec);
    // the empty .eh_frame segment maps nothing and is dropped
    assert!(image.segments.iter().all(|s| s.memsz != 0));
    assert!(image.segments.iter().all(|s| s.vaddr % PAGE_SIZE == s.offset % PAGE_SIZE));
}

#[test]
fn relocates_static_pie_pointers_to_the_load_base() {
    let bytes = static_pie();
    let image = inspect(bytes).unwrap();
    let relocated = relocate_static_pie(bytes, &image).unwrap();
    let at = rela_entry(bytes);
    let (r_offset, addend) = (get_u64(bytes, at), get_u64(bytes, at + 16));
    let data = image.segments.iter().find(|s| s.write).unwrap();
    // the data segment's link-time address is its shifted address minus IMAGE_MIN
    let file_offset = (data.offset + r_offset - (data.vaddr - IMAGE_MIN)) as usize;
    assert_eq!(get_u64(&relocated, file_offset), IMAGE_MIN + addend);
    assert_eq!(get_u64(&relocated, file_offset), image.entry, "ptr holds _start");
    // nothing else changed
    let changed = bytes.iter().zip(&relocated).filter(|(a, b)| a != b).count();
    assert!(changed <= 8 && relocated.len() == bytes.len());
}

#[test]
fn relocate_returns_a_plain_copy_of_an_executable() {
    let bytes = static_exec();
    let image = inspect(bytes).unwrap();
    assert_eq!(relocate_static_pie(bytes, &image).unwrap(), bytes);
}

#[test]
fn relocate_rejects_an_image_of_other_bytes() {
    let mut image = inspect(static_pie()).unwrap();
    image.entry += 1;
    assert!(matches!(relocate_static_pie(static_pie(), &image), Err(ElfError::ImageMismatch)));
    let exec_image = inspect(static_exec()).unwrap();
    assert!(matches!(relocate_static_pie(static_pie(), &exec_image), Err(ElfError::ImageMismatch)));
}

#[test]
fn rejects_dynamic_executable_with_zvm_gcc_hint() {
    let err = inspect(dynamic()).unwrap_err();
    assert!(matches!(err, ElfError::DynamicallyLinked { .. }));
    assert_eq!(
        err.to_string(),
        "program is dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2); \
         build it with zvm-gcc (sandbox/guest/zvm-gcc prog.c -o prog)"
    );
    assert_eq!(err.code(), ReturnCode::BadExecutable);
}

#[test]
fn rejects_needed_library_without_interpreter() {
    let elf = goblin::elf::Elf::parse(dynamic()).unwrap();
    let interp = elf.program_headers.iter().position(|p| p.p_type == ph::PT_INTERP).unwrap();
    let bytes = apply(dynamic(), &[(At::Phdr32(interp, P_TYPE), ph::PT_NULL.into())]);
    let err = inspect(&bytes).unwrap_err();
    assert!(matches!(err, ElfError::DynamicallyLinked { .. }), "{err}");
    assert!(err.to_string().starts_with("program is dynamically linked (needs libc.so.6);"), "{err}");
}

/// Where a test writes into a fixture.
#[derive(Clone, Copy)]
enum At {
    /// A byte of `e_ident`.
    Ident(usize),
    /// A 16-bit field of the ELF header.
    Half(usize),
    /// A 64-bit field of the ELF header.
    Quad(usize),
    /// The flags or type (32-bit) of program header `.0`, field `.1`.
    Phdr32(usize, usize),
    /// A 64-bit field `.1` of program header `.0`.
    Phdr64(usize, usize),
    /// A 64-bit field of the static-PIE fixture's relocation entry.
    Rela(usize),
    /// The value of the first dynamic entry with this tag.
    DynVal(u64),
    /// The tag of the first dynamic entry with this tag.
    DynTag(u64),
}

/// A table row: name, writes into the fixture, start of the expected message.
type Case = (&'static str, &'static [(At, u64)], &'static str);

fn apply(base: &[u8], writes: &[(At, u64)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(at, value) in writes {
        match at {
            At::Ident(i) => b[i] = value as u8,
            At::Half(off) => put_u16(&mut b, off, value as u16),
            At::Quad(off) => put_u64(&mut b, off, value),
            At::Phdr32(index, field) => put_u32(&mut b, phdr(base, index, field), value as u32),
            At::Phdr64(index, field) => put_u64(&mut b, phdr(base, index, field), value),
            At::Rela(field) => put_u64(&mut b, rela_entry(base) + field, value),
            At::DynVal(tag) => put_u64(&mut b, dyn_value(base, tag), value),
            At::DynTag(tag) => put_u64(&mut b, dyn_value(base, tag) - 8, value),
        }
    }
    b
}

#[test]
fn rejects_hostile_variants_of_the_static_executable() {
    use At::*;
    // fixture layout: phdr 0 R at 0x400000, 1 R-X at 0x401000, 2 RW- at 0x402000 (.data, .bss), 3 NOTE
    let cases: &[Case] = &[
        ("bad magic", &[(Ident(0), 0)], "not an ELF executable"),
        ("32-bit", &[(Ident(4), 1)], "32-bit ELF is not supported"),
        ("big-endian", &[(Ident(5), 2)], "big-endian ELF is not supported"),
        ("aarch64", &[(Half(E_MACHINE), 183)], "wrong machine AARCH64"),
        ("object file", &[(Half(E_TYPE), 1)], "ELF type REL is not an executable"),
        ("odd phdr size", &[(Half(E_PHENTSIZE), 32)], "program header size is 32"),
        ("phdrs past the end", &[(Quad(E_PHOFF), 0x10_0000)], "truncated file: program headers"),
        (
            "phdr offset overflows",
            &[(Quad(E_PHOFF), u64::MAX - 8)],
            "address arithmetic overflows in program header table",
        ),
        (
            "data past the end",
            &[(Phdr64(2, P_FILESZ), 0x10_0000), (Phdr64(2, P_MEMSZ), 0x10_0000)],
            "truncated file: data of program header 2",
        ),
        (
            "filesz above memsz",
            &[(Phdr64(2, P_FILESZ), 0x3000)],
            "program header 2: file size 0x3000 exceeds memory size 0x2008",
        ),
        (
            "offset not congruent",
            &[(Phdr64(2, P_OFFSET), 0x2004)],
            "program header 2: address 0x402000 and file offset 0x2004 differ modulo the page size",
        ),
        (
            "text not on a page",
            &[(Phdr64(1, P_OFFSET), 0x1004), (Phdr64(1, P_VADDR), 0x40_1004)],
            "program header 1: executable segment at 0x401004 does not start on a page boundary",
        ),
        (
            "writable text",
            &[(Phdr32(1, P_FLAGS), RWX as u64)],
            "program header 1 at 0x401000 is both writable and executable",
        ),
        (
            "data over the text page",
            &[(Phdr64(2, P_VADDR), 0x40_1000)],
            "program headers 1 and 2 overlap (both use pages in 0x401000..0x402000)",
        ),
        (
            "below the image range",
            &[(Phdr64(0, P_VADDR), 0x1_0000)],
            "program header 0 (0x10000..0x11000) lies outside the guest image range 0x400000..0x80000000",
        ),
        (
            "above the image range",
            &[(Phdr64(2, P_VADDR), 0x7fff_f000)],
            "program header 2 (0x7ffff000..0x80002000) lies outside",
        ),
        (
            "segment end overflows",
            &[(Phdr64(2, P_MEMSZ), u64::MAX - 0x1000)],
            "address arithmetic overflows in program header 2",
        ),
        (
            "page end overflows",
            &[(Phdr64(2, P_VADDR), 0xffff_ffff_ffff_f000), (Phdr64(2, P_MEMSZ), 0xff0)],
            "address arithmetic overflows in program header 2",
        ),
        ("no executable segment", &[(Phdr32(1, P_FLAGS), R as u64)], "no executable segment"),
        ("entry in data", &[(Quad(E_ENTRY), 0x40_2000)], "entry point 0x402000 is not inside an executable segment"),
        (
            "entry past the text",
            &[(Quad(E_ENTRY), 0x40_1800)],
            "entry point 0x401800 is not inside an executable segment",
        ),
        (
            "thread-local storage outside the image",
            &[
                (Phdr32(3, P_TYPE), ph::PT_TLS as u64),
                (Phdr64(3, P_VADDR), 0x7000_0000),
                (Phdr64(3, P_FILESZ), 16),
                (Phdr64(3, P_MEMSZ), 16),
            ],
            "bad thread-local storage header: its initialised bytes are not inside one loaded segment's file bytes",
        ),
        (
            "thread-local storage bigger in the file than in memory",
            &[(Phdr32(3, P_TYPE), ph::PT_TLS as u64), (Phdr64(3, P_FILESZ), 16), (Phdr64(3, P_MEMSZ), 8)],
            "bad thread-local storage header: its file size exceeds its memory size",
        ),
    ];
    for &(name, writes, message) in cases {
        let err = inspect(&apply(static_exec(), writes)).expect_err(name);
        assert!(err.to_string().starts_with(message), "{name}: {err}");
        assert_eq!(err.code(), ReturnCode::BadExecutable, "{name}");
    }
}

#[test]
fn rejects_truncated_files_at_every_structure() {
    let bytes = static_exec();
    let cases: &[(usize, &str)] = &[
        (0, "not an ELF executable"),
        (3, "not an ELF executable"),
        (4, "truncated file: ELF header"),
        (63, "truncated file: ELF header"),
        (100, "truncated file: program headers"),
        (0x1008, "truncated file: data of program header 1"),
        (0x2004, "truncated file: data of program header 2"),
    ];
    for &(len, message) in cases {
        let err = inspect(&bytes[..len]).expect_err("truncated");
        assert!(err.to_string().starts_with(message), "{len:#x}: {err}");
    }
    // section headers are not read: cutting them off changes nothing
    assert!(inspect(&bytes[..0x2008]).is_ok());
}

#[test]
fn rejects_more_than_sixteen_load_segments() {
    let loads: Vec<_> = (0..17).map(|i| (RX, 0x40_0000 + i * 0x1000, i * 0x1000, 1, 1)).collect();
    let err = inspect(&synthesize(&loads, 0x40_0000)).unwrap_err();
    assert!(matches!(err, ElfError::TooManySegments { count: 17 }), "{err}");
    assert!(inspect(&synthesize(&loads[..16], 0x40_0000)).is_ok());
}

#[test]
fn rejects_overlap_within_a_shared_page() {
    // byte ranges are disjoint but both segments use the page at 0x401000
    let loads = [(RX, 0x40_1000, 0x1000, 0x10, 0x10), (R, 0x40_1800, 0x1800, 0x10, 0x10)];
    let err = inspect(&synthesize(&loads, 0x40_1000)).unwrap_err();
    assert!(matches!(err, ElfError::Overlap { start: 0x40_1000, end: 0x40_2000, .. }), "{err}");
}

#[test]
fn rejects_hostile_static_pie_relocations() {
    use At::*;
    // fixture: one R_X86_64_RELATIVE at 0x3000 (.data); text at 0x1000, .bss from 0x3008;
    // Rela(0) is r_offset, Rela(8) r_info, Rela(16) r_addend
    let cases: &[Case] = &[
        ("absolute relocation", &[(Rela(8), 1)], "unsupported relocation: type 1 at 0x3000"),
        ("relocation with a symbol", &[(Rela(8), (1 << 32) | 8)], "unsupported relocation: type 8 at 0x3000"),
        ("into the text", &[(Rela(0), 0x1000)], "relocation at 0x1000 lands in an executable segment"),
        ("into .bss", &[(Rela(0), 0x4000)], "relocation at 0x4000 lands outside the file-backed bytes"),
        ("outside the image", &[(Rela(0), 0x10_0000)], "relocation at 0x100000 lands outside every segment"),
        ("over the ELF header", &[(Rela(0), 0x18)], "relocation at 0x18 overwrites the ELF headers"),
        (
            "value below zero",
            &[(Rela(16), (-0x50_0000i64) as u64)],
            "address arithmetic overflows in relocation at 0x3000",
        ),
        ("odd entry size", &[(DynVal(dynamic::DT_RELAENT), 16)], "malformed dynamic section: DT_RELAENT is not 24"),
        ("REL table", &[(DynTag(dynamic::DT_RELACOUNT), dynamic::DT_RELSZ)], "unsupported relocation: REL table"),
        (
            "table outside the file",
            &[(DynVal(dynamic::DT_RELA), 0x4000)],
            "malformed dynamic section: relocation table is not backed by file bytes",
        ),
        ("interpreter", &[(Phdr32(0, P_TYPE), ph::PT_INTERP as u64)], "program is dynamically linked (interpreter "),
    ];
    for &(name, writes, message) in cases {
        let err = inspect(&apply(static_pie(), writes)).expect_err(name);
        assert!(err.to_string().starts_with(message), "{name}: {err}");
    }
}

/// xorshift64: deterministic, dependency-free randomness for the fuzz-ish tests.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Everything a loader would do with an accepted image, so panics anywhere show up.
fn exercise(bytes: &[u8]) {
    if let Ok(image) = inspect(bytes) {
        if let Ok(relocated) = relocate_static_pie(bytes, &image) {
            let _ = crate::validator::validate_image(&relocated, &image);
        }
    }
}

#[test]
fn never_panics_on_any_truncation() {
    for bytes in [static_exec(), static_pie(), dynamic()] {
        for len in 0..bytes.len() {
            exercise(&bytes[..len]);
        }
    }
}

#[test]
fn never_panics_on_random_mutations_or_noise() {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for round in 0..4000 {
        let base = [static_exec(), static_pie(), dynamic()][round % 3];
        let mut bytes = base.to_vec();
        for _ in 0..1 + next(&mut state) % 8 {
            // mostly the headers, where the structure is
            let span = if next(&mut state) % 4 == 0 { bytes.len() } else { 0x400 };
            let at = (next(&mut state) as usize) % span;
            bytes[at] = next(&mut state) as u8;
        }
        exercise(&bytes);
    }
    for _ in 0..1000 {
        let len = (next(&mut state) % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        if len >= 8 {
            bytes[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        }
        exercise(&bytes);
    }
}
