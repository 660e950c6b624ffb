/*
 * layout.h - the contract between the supervisor (Rust, src/jail/layout.rs)
 * and the loader: one `struct zl_layout` at offset 0 of a sealed memfd, which
 * also holds the manifest area, the seccomp program and the initial stack.
 * Field order and sizes are mirrored by `#[repr(C)] struct Layout`; a Rust
 * test checks the size and the magic.
 */
#ifndef ZL_LAYOUT_H
#define ZL_LAYOUT_H
#include <stdint.h>

#define ZL_MAGIC 0x31524544414f4c5aULL /* "ZLOADER1" little endian */
#define ZL_MAX_SEGMENTS 16
#define ZL_MAX_REGIONS (ZL_MAX_SEGMENTS + 2) /* writable segments, heap, stack */
#define ZL_MAX_WARM 8192 /* runs in a slot's warm table */
#define ZL_FORK_RESUME (ZL_TRAMPOLINE + 0x380) /* a daemon's copy starts here */
/* A pool slot (a daemon's copy started ahead of its job, loader argv[1] "p")
 * keeps its socket and /proc/self/io at ZL_SLOT_FD and up while it waits, and
 * receives at most ZL_SLOT_MAX_FDS descriptors: the job's channels, then its
 * layout (the kernel's limit for one SCM_RIGHTS message is 253). */
#define ZL_SLOT_FD 1024
#define ZL_SLOT_MAX_FDS 253

/* Fixed addresses (see src/abi.rs). */
#define ZL_TRAMPOLINE 0x10000UL
#define ZL_MANIFEST_ADDR 0x20000UL
#define ZL_LOADER_BASE 0x10000000000UL
#define ZL_LOADER_LEN 0x100000UL

struct zl_segment {
    uint64_t vaddr, memsz, offset, filesz;
    uint32_t prot; /* PROT_READ | PROT_WRITE | PROT_EXEC */
    uint32_t pad;
};

struct zl_layout {
    uint64_t magic;
    uint64_t entry;           /* guest entry point */
    uint64_t initial_sp;      /* guest rsp at entry, 16-byte aligned */
    uint64_t stack_lo;        /* lowest stack byte; the page below is the guard */
    uint64_t stack_hi;        /* end of the stack (STACK_TOP) */
    uint64_t stack_image_off; /* bytes copied to [initial_sp, stack_hi) */
    uint64_t heap_addr, heap_size;
    uint64_t manifest_off, manifest_len; /* page aligned; mapped read-only at ZL_MANIFEST_ADDR */
    uint64_t filter_off, filter_len;     /* struct sock_filter[filter_len] */
    uint32_t nseg;
    int32_t channels; /* N: fds [0,N) are channels, N the socket, N+1 the image, N+2 this file,
                         N+4 /proc/self/io (N+3 was the loader, closed by exec) */
    struct zl_segment seg[ZL_MAX_SEGMENTS];
    /* A daemon's copy (resume_sp != 0): each region is mapped privately
     * (copy-on-write) from the daemon's memory file, fd N+4 (/proc/self/io
     * is then N+5), over what the steps above mapped; the guest resumes at
     * ZL_FORK_RESUME with rsp = resume_sp. */
    uint64_t resume_sp;
    uint64_t nregion;
    struct zl_region { uint64_t addr, len, off; } region[ZL_MAX_REGIONS];
    /* A pool slot: struct zl_warm[warm_len] at warm_off in this file, the
     * pages its daemon's copies touch (from the daemon's warm-up copy),
     * mapped before the job arrives: read (page tables only) or, for pages
     * the copy wrote, copied ahead. warm_len 0: the slot maps what the
     * daemon's memory holds instead. */
    uint64_t warm_off, warm_len;
};
struct zl_warm {
    uint64_t addr;  /* first page */
    uint32_t pages; /* pages in the run */
    uint32_t write; /* 1: copied ahead (MADV_POPULATE_WRITE), 0: mapped to read */
};

/* Sent with the listener fd over the socket: the guest's I/O counters just
 * before its first instruction (from /proc/self/io), so the report counts
 * only the guest's own calls. `valid` is 0 when /proc was unreadable. */
struct zl_hello {
    uint64_t rchar, wchar, syscr, syscw;
    uint64_t valid;
};

#endif
