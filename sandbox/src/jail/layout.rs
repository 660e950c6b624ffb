//! The layout file: everything the loader needs to build one guest.
//!
//! The supervisor writes a `struct zl_layout` header (`loader/layout.h`), the
//! manifest area the guest sees at [`abi::MANIFEST_ADDR`], the guest's initial
//! stack (argv and envp) and the seccomp program into one sealed memfd. The
//! loader maps it, follows it, and closes it before the guest runs. Fields are
//! written one by one in `layout.h` order (no `unsafe` transmutes); a test
//! checks the header size against the C struct.

use std::io::Write;
use std::os::fd::OwnedFd;

use crate::abi;

use super::memfd::sealed_memfd_from;

/// `ZL_MAGIC`: "ZLOADER1".
pub const MAGIC: u64 = 0x3152_4544_414f_4c5a;
/// `ZL_MAX_SEGMENTS`.
pub const MAX_SEGMENTS: usize = 16;
/// `ZL_MAX_REGIONS`: a daemon's writable segments, heap and stack.
pub const MAX_REGIONS: usize = MAX_SEGMENTS + 2;
/// `ZL_MAX_WARM`: runs in a pool slot's warm table.
pub const MAX_WARM: usize = 8192;
/// `sizeof(struct zl_layout)`.
pub const HEADER_SIZE: usize = 12 * 8 + 8 + MAX_SEGMENTS * 40 + 16 + MAX_REGIONS * 24 + 16;
/// `sizeof(struct zl_warm)`.
const WARM_SIZE: usize = 16;
/// `sizeof(struct zl_hello)`: the message the loader sends with the listener.
pub const HELLO_SIZE: usize = 5 * 8;

/// One guest image segment to map (page rounding is the loader's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSegment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// Offset of the first byte in the image file.
    pub offset: u64,
    /// Bytes backed by the file (the rest is zeroed).
    pub filesz: u64,
    /// `PROT_*` bits.
    pub prot: u32,
}

/// One channel as the guest sees it (a `struct ZVMChannel`) plus the gate-table
/// entry the trampoline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestChannel {
    /// The alias.
    pub name: String,
    /// The manifest's access type (0..=3).
    pub access_type: i64,
    /// gets, get_size, puts, put_size.
    pub limits: [i64; 4],
    /// Size at start for random-get channels, else 0.
    pub size: i64,
    /// The guest-side file descriptor.
    pub fd: u32,
    /// `abi::gate_flags` bits.
    pub flags: u32,
}

/// What the guest's auxiliary vector says: enough for a libc to start
/// (musl reads `AT_PHDR`/`AT_PHENT`/`AT_PHNUM` to find its `PT_TLS`,
/// `AT_RANDOM` for its stack-protector canary, `AT_PAGESZ`), and nothing
/// about the host: no `AT_SYSINFO_EHDR` (there is no vDSO), no uid, no
/// hardware capabilities, no `AT_EXECFN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auxv {
    /// `AT_PHDR`: guest address of the program headers (0: left out).
    pub phdr: u64,
    /// `AT_PHNUM`.
    pub phnum: u16,
    /// `AT_ENTRY`.
    pub entry: u64,
    /// The 16 bytes `AT_RANDOM` points at: from a seed, so runs repeat.
    pub random: [u8; 16],
}

/// `AT_*` keys (`<elf.h>`).
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const ENTRY: u64 = 9;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
}

/// A daemon's copy: where its memory comes from and where it resumes
/// (`loader/layout.h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The stack pointer `zvm_fork`'s gate left (its saved state on top).
    pub sp: u64,
    /// `(address, length, offset in the daemon's memory file)`, page aligned.
    pub regions: Vec<(u64, u64, u64)>,
}

/// A run of pages a pool slot maps before its job (`struct zl_warm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmRun {
    /// The first page's address.
    pub addr: u64,
    /// Pages in the run.
    pub pages: u32,
    /// Whether the pages are copied ahead (the copy writes them), not only
    /// mapped to read.
    pub write: bool,
}

/// Everything that goes into one layout file.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// Guest entry point.
    pub entry: u64,
    /// Image segments.
    pub segments: &'a [MapSegment],
    /// Heap start and size.
    pub heap: (u64, u64),
    /// Stack size (its top is `abi::STACK_TOP`).
    pub stack_size: u64,
    /// Channels in guest order.
    pub channels: &'a [GuestChannel],
    /// argv, `argv[0]` first.
    pub args: &'a [String],
    /// Environment.
    pub env: &'a [(String, String)],
    /// The auxiliary vector after envp.
    pub auxv: Auxv,
    /// The seccomp program.
    pub filter: &'a [libc::sock_filter],
    /// For a daemon's copy: its memory and where it resumes.
    pub resume: Option<&'a Resume>,
    /// For a pool slot: the pages to map before its job (empty: what the
    /// daemon's memory holds).
    pub warm: &'a [WarmRun],
}

/// Why a layout could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The manifest area would not fit below the image.
    #[error("channel names need {needed} bytes of manifest area, more than the {max} available")]
    ManifestTooLarge {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        max: u64,
    },
    /// argv and envp would not fit in a quarter of the stack.
    #[error("arguments and environment need {needed} bytes, more than a quarter of the {stack}-byte stack")]
    ArgumentsTooLarge {
        /// Bytes needed.
        needed: usize,
        /// Stack size.
        stack: u64,
    },
    /// Too many segments.
    #[error("program has {0} loadable segments, at most {MAX_SEGMENTS} are supported")]
    TooManySegments(usize),
    /// A daemon's memory in more regions than the layout holds.
    #[error("a daemon's memory is {0} regions, at most {MAX_REGIONS} are supported")]
    TooManyRegions(usize),
    /// A warm table longer than the loader takes.
    #[error("a pool slot's warm table has {0} runs, at most {MAX_WARM} are supported")]
    TooManyWarmRuns(usize),
    /// Writing the memfd failed.
    #[error("cannot write the layout file")]
    Io(#[from] std::io::Error),
}

const PAGE: usize = abi::PAGE_SIZE as usize;

fn round_up(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}

/// The manifest area: UserManifest at 0, the gate table at 64, then the
/// `ZVMChannel` records and the NUL-terminated names. Pointers are absolute.
pub fn manifest_area(heap: (u64, u64), stack_size: u64, channels: &[GuestChannel]) -> Result<Vec<u8>, LayoutError> {
    let n = channels.len();
    let records = 64 + 8 * n;
    let names = records + 56 * n;
    let names_len: usize = channels.iter().map(|c| c.name.len() + 1).sum();
    let total = round_up(names + names_len, PAGE);
    let max = abi::MANIFEST_END - abi::MANIFEST_ADDR;
    if total as u64 > max {
        return Err(LayoutError::ManifestTooLarge { needed: total, max });
    }
    let base = abi::MANIFEST_ADDR;
    let mut out = Vec::with_capacity(total);
    for v in [heap.0, heap.1, stack_size, n as u64, base + records as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(64, 0);
    for c in channels {
        out.extend_from_slice(&c.fd.to_le_bytes());
        out.extend_from_slice(&c.flags.to_le_bytes());
    }
    let mut name_at = base + names as u64;
    for c in channels {
        for v in c.limits.iter().chain([&c.size, &c.access_type]) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_at.to_le_bytes());
        name_at += c.name.len() as u64 + 1;
    }
    for c in channels {
        out.extend_from_slice(c.name.as_bytes());
        out.push(0);
    }
    out.resize(total, 0);
    Ok(out)
}

/// The initial stack's top part: `[initial_sp, top)`, returned with
/// `initial_sp`. At `initial_sp`: argc, argv pointers, NULL, envp pointers,
/// NULL, the auxv pairs ending in AT_NULL; above them the 16 `AT_RANDOM`
/// bytes, then the strings.
pub fn stack_image(
    args: &[String],
    env: &[(String, String)],
    auxv: &Auxv,
    top: u64,
    stack: u64,
) -> Result<(Vec<u8>, u64), LayoutError> {
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let strings: usize = args.iter().chain(&env).map(|s| s.len() + 1).sum();
    let random_at = top - round_up(strings, 16) as u64 - 16;
    let mut pairs =
        vec![(at::PAGESZ, abi::PAGE_SIZE), (at::ENTRY, auxv.entry), (at::RANDOM, random_at), (at::SECURE, 0)];
    if auxv.phdr != 0 {
        pairs.extend([(at::PHDR, auxv.phdr), (at::PHENT, 56), (at::PHNUM, u64::from(auxv.phnum))]);
    }
    pairs.push((at::NULL, 0));
    let words = 1 + args.len() + 1 + env.len() + 1 + 2 * pairs.len();
    let needed = round_up(strings, 16) + 16 + round_up(words * 8, 16);
    if needed as u64 > stack / 4 {
        return Err(LayoutError::ArgumentsTooLarge { needed, stack });
    }
    let sp = top - needed as u64;
    let mut strings_at = top - round_up(strings, 16) as u64;
    let mut ptrs = Vec::with_capacity(words);
    let mut text = Vec::with_capacity(round_up(strings, 16));
    ptrs.push(args.len() as u64);
    for group in [args, &env[..]] {
        for s in group {
            ptrs.push(strings_at);
            strings_at += s.len() as u64 + 1;
            text.extend_from_slice(s.as_bytes());
            text.push(0);
        }
        ptrs.push(0);
    }
    ptrs.extend(pairs.iter().flat_map(|&(k, v)| [k, v]));
    let mut out: Vec<u8> = ptrs.iter().flat_map(|p| p.to_le_bytes()).collect();
    out.resize(round_up(words * 8, 16), 0);
    out.extend_from_slice(&auxv.random);
    text.resize(round_up(strings, 16), 0);
    out.extend_from_slice(&text);
    debug_assert_eq!(out.len(), needed);
    Ok((out, sp))
}

impl Layout<'_> {
    /// Writes the sealed layout file for a guest with `channels` channels.
    pub fn write(&self) -> Result<OwnedFd, LayoutError> {
        if self.segments.len() > MAX_SEGMENTS {
            return Err(LayoutError::TooManySegments(self.segments.len()));
        }
        let manifest = manifest_area(self.heap, self.stack_size, self.channels)?;
        let (stack, sp) = stack_image(self.args, self.env, &self.auxv, abi::STACK_TOP, self.stack_size)?;
        let manifest_off = PAGE;
        let stack_off = manifest_off + manifest.len();
        let filter_off = round_up(stack_off + stack.len(), 8);
        let warm_off = filter_off + self.filter.len() * 8;
        if self.warm.len() > MAX_WARM {
            return Err(LayoutError::TooManyWarmRuns(self.warm.len()));
        }

        let mut buf = Vec::with_capacity(filter_off + self.filter.len() * 8);
        for v in [
            MAGIC,
            self.entry,
            sp,
            abi::STACK_TOP - self.stack_size,
            abi::STACK_TOP,
            stack_off as u64,
            self.heap.0,
            self.heap.1,
            manifest_off as u64,
            manifest.len() as u64,
            filter_off as u64,
            self.filter.len() as u64,
        ] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.channels.len() as i32).to_le_bytes());
        for s in self.segments {
            for v in [s.vaddr, s.memsz, s.offset, s.filesz] {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            buf.extend_from_slice(&s.prot.to_le_bytes());
            buf.extend_from_slice(&0u32.to_le_bytes());
        }
        buf.resize(12 * 8 + 8 + MAX_SEGMENTS * 40, 0);
        if let Some(r) = self.resume {
            if r.regions.len() > MAX_REGIONS {
                return Err(LayoutError::TooManyRegions(r.regions.len()));
            }
            buf.extend_from_slice(&r.sp.to_le_bytes());
            buf.extend_from_slice(&(r.regions.len() as u64).to_le_bytes());
            for &(addr, len, off) in &r.regions {
                for v in [addr, len, off] {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        buf.resize(HEADER_SIZE - 16, 0);
        let warm_at = if self.warm.is_empty() { 0 } else { warm_off };
        buf.extend_from_slice(&(warm_at as u64).to_le_bytes());
        buf.extend_from_slice(&(self.warm.len() as u64).to_le_bytes());
        buf.resize(manifest_off, 0);
        buf.extend_from_slice(&manifest);
        buf.extend_from_slice(&stack);
        buf.resize(filter_off, 0);
        for f in self.filter {
            buf.extend_from_slice(&f.code.to_le_bytes());
            buf.push(f.jt);
            buf.push(f.jf);
            buf.extend_from_slice(&f.k.to_le_bytes());
        }
        for w in self.warm {
            buf.extend_from_slice(&w.addr.to_le_bytes());
            buf.extend_from_slice(&w.pages.to_le_bytes());
            buf.extend_from_slice(&u32::from(w.write).to_le_bytes());
        }
        debug_assert_eq!(buf.len(), warm_off + self.warm.len() * WARM_SIZE);
        let fd = sealed_memfd_from(c"zerolab-layout", |f| f.write_all(&buf))?;
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_size_matches_the_c_struct() {
        assert_eq!(HEADER_SIZE, 1208);
    }

    const AUXV: Auxv = Auxv { phdr: 0x40_0040, phnum: 9, entry: 0x40_1000, random: [7; 16] };

    #[test]
    fn stack_image_is_aligned_and_points_at_its_strings() {
        let args = vec!["prog".to_string(), "a b".to_string()];
        let env = vec![("K".to_string(), "V".to_string())];
        let (img, sp) = stack_image(&args, &env, &AUXV, abi::STACK_TOP, 1 << 20).unwrap();
        assert_eq!(sp % 16, 0);
        assert_eq!(sp + img.len() as u64, abi::STACK_TOP);
        let word = |i: usize| u64::from_le_bytes(img[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(word(0), 2);
        let at = |p: u64| {
            let o = (p - sp) as usize;
            let end = img[o..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8(img[o..o + end].to_vec()).unwrap()
        };
        assert_eq!(at(word(1)), "prog");
        assert_eq!(at(word(2)), "a b");
        assert_eq!(word(3), 0);
        assert_eq!(at(word(4)), "K=V");
        assert_eq!(word(5), 0);
        let auxv: Vec<(u64, u64)> =
            (0..).map(|i| (word(6 + 2 * i), word(7 + 2 * i))).take_while(|p| p.0 != 0).collect();
        let get = |k| auxv.iter().find(|p| p.0 == k).map(|p| p.1);
        assert_eq!(get(at::PHDR), Some(0x40_0040));
        assert_eq!(get(at::PHENT), Some(56));
        assert_eq!(get(at::PHNUM), Some(9));
        assert_eq!(get(at::PAGESZ), Some(4096));
        assert_eq!(get(at::ENTRY), Some(0x40_1000));
        assert_eq!(get(33), None, "no vDSO (AT_SYSINFO_EHDR)");
        let random = (get(at::RANDOM).unwrap() - sp) as usize;
        assert_eq!(&img[random..random + 16], &[7; 16]);
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let args = vec!["x".repeat(100_000)];
        assert!(matches!(
            stack_image(&args, &[], &AUXV, abi::STACK_TOP, 64 * 1024),
            Err(LayoutError::ArgumentsTooLarge { .. })
        ));
    }

    #[test]
    fn manifest_area_records_channels_in_order() {
        let ch = |name: &str, fd| GuestChannel {
            name: name.into(),
            access_type: 3,
            limits: [1, 2, 3, 4],
            size: 9,
            fd,
            flags: 5,
        };
        let area = manifest_area((abi::HEAP_ADDR, 1 << 20), 65536, &[ch("/dev/stdin", 7), ch("/dev/x", 8)]).unwrap();
        let word = |o: usize| u64::from_le_bytes(area[o..o + 8].try_into().unwrap());
        assert_eq!(word(0), abi::HEAP_ADDR);
        assert_eq!(word(24), 2);
        assert_eq!(word(64) as u32, 7, "gate table fd");
        let rec = (word(32) - abi::MANIFEST_ADDR) as usize;
        assert_eq!(rec, 64 + 16);
        assert_eq!(word(rec + 56), 1, "second record's gets");
        let name = (word(rec + 56 + 48) - abi::MANIFEST_ADDR) as usize;
        assert_eq!(&area[name..name + 7], b"/dev/x\0");
    }
}
