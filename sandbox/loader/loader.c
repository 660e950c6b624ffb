/*
 * loader.c - builds a guest's address space, then hands over to the guest.
 *
 * The supervisor forks a child that drops its privileges and execs this
 * static program, so the guest starts in a fresh address space holding none
 * of the runtime's memory. Everything the loader does comes from the
 * supervisor's sealed layout file (layout.h); it parses nothing the guest
 * wrote. Steps, in order (the loader's own numbering; in docs/security.md's
 * table, jail::Step, 1-6 are step 10, 7 is 11, 8 is 12 and 9 is 13):
 *   1. switch to the loader's own stack and unblock signals (the supervisor
 *      blocked them around fork; exec has reset their handlers);
 *   2. unmap the kernel-made stack and the vDSO/vvar pages (no vDSO: the guest
 *      has no path to the kernel but the trampoline), before anything of ours
 *      is mapped where the kernel might place it next to them;
 *   3. map the layout file and check its magic;
 *   4. map the guest image from the sealed image file, zero its bss, map the
 *      heap, the stack with a guard page below it, and the manifest area;
 *      for a daemon's copy (layout.h), map the daemon's memory over the
 *      writable parts, copy-on-write, and enter where zvm_fork returns;
 *      a pool slot (argv[1] "p": a daemon's copy started before its job,
 *      layout.h) then maps the program's and the daemon's pages read-only
 *      ahead of its job
 *      (page tables, no copies), closes the daemon's files and waits: the
 *      job's channels and layout arrive on the socket as descriptors, land
 *      at 0..N, and the manifest area and filter come from the job's layout;
 *      the slot exits if the supervisor closes the socket instead;
 *   5. close the image and layout files;
 *   6. read the I/O counters so the report counts only the guest's own I/O,
 *      from /proc/self/io opened before exec (fd N+4: a root supervisor's
 *      guest is not dumpable, so its /proc files are root's and it could not
 *      open them now), and close that file;
 *   7. the guest's traps, after everything the loader itself does and before
 *      the filter (which forbids prctl, arch_prctl and rt_sigaction):
 *      a. rdtsc and rdtscp fault (PR_SET_TSC): no clock, even from an
 *         instruction hidden from the validator inside another one (the
 *         kernel then rewrites CR4 at each switch to or from the guest: a VM
 *         exit under some hypervisors, a few us per mediated call);
 *      b. cpuid faults (ARCH_SET_CPUID) where the CPU can make it fault;
 *         where it cannot (ENODEV) the guest runs anyway, as the supervisor
 *         logs once per process, since refusing would refuse every guest on
 *         such hosts for an identity that is no clock and no randomness;
 *      c. SIGXFSZ ignored, so a write past RLIMIT_FSIZE returns EFBIG to the
 *         guest instead of killing it;
 *   8. install the seccomp filter (with a listener for the supervisor) - last,
 *      because after it the loader itself may no longer call the kernel;
 *   9. jump to zl_enter in the trampoline page, which sends the listener,
 *      closes it and the socket, unmaps this loader and enters the guest
 *      (the filter lets it close only fds N and N+1: a listener landing
 *      elsewhere is a violation, and the supervisor kills the guest).
 * Any failure before step 8 sends a one-line reason on the socket and exits
 * with status 120.
 */
#include <stddef.h>
#include <stdint.h>
#include "layout.h"

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_lseek 8
#define SEEK_DATA 3
#define SEEK_HOLE 4
#define SYS_mincore 27
#define SYS_madvise 28
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#define SYS_dup2 33
#define SYS_recvmsg 47
#define SYS_fcntl 72
#define F_DUPFD_CLOEXEC 1030
#define MSG_CTRUNC 8
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_prctl 157
#define SYS_arch_prctl 158
#define SYS_exit_group 231
#define SYS_prlimit64 302
#define RLIMIT_CPU 0
#define RLIMIT_FSIZE 1
#define SYS_seccomp 317
#define SYS_mount 165
#define SYS_sethostname 170
#define SYS_unshare 272
#define CLONE_NEWNS 0x00020000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define MS_REC 0x4000
#define MS_PRIVATE 0x40000

#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define PROT_NONE 0
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_FIXED_NOREPLACE 0x100000
#define PR_SET_TSC 26
#define PR_TSC_SIGSEGV 2
#define ARCH_SET_CPUID 0x1012
#define ENODEV 19
#define SIGXFSZ 25
#define SIG_IGN 1
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_FILTER_FLAG_NEW_LISTENER 8
#define AT_SYSINFO_EHDR 33
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define PAGE 4096UL

struct sock_fprog { unsigned short len; void *filter; };
struct iovec { void *base; size_t len; };
struct msghdr {
    void *name; uint32_t namelen; struct iovec *iov; size_t iovlen;
    void *control; size_t controllen; int flags;
};
struct cmsg_fd { size_t len; int level; int type; int fd; int pad; };
struct kernel_sigaction { unsigned long handler, flags, restorer, mask; };

/* zl_enter lives in the trampoline page, far from this window: call it by
 * its fixed address (trampoline.S places it at offset 0x200). */
typedef void (*zl_enter_fn)(struct msghdr *hello, long sock, uint64_t entry, uint64_t sp, long listener)
    __attribute__((noreturn));
#define ZL_ENTER ((zl_enter_fn)(ZL_TRAMPOLINE + 0x200))

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static int sock_fd;

static __attribute__((noreturn)) void die(const char *what, long err)
{
    char msg[96];
    size_t n = 0;
    while (*what && n < 64) msg[n++] = *what++;
    const char *s = ": errno ";
    while (*s) msg[n++] = *s++;
    unsigned long e = (unsigned long)(err < 0 ? -err : err);
    char digits[20];
    int d = 0;
    do { digits[d++] = (char)('0' + e % 10); e /= 10; } while (e && d < 20);
    while (d) msg[n++] = digits[--d];
    sys3(SYS_write, sock_fd, msg, n);
    sys3(SYS_exit_group, 120, 0, 0);
    __builtin_unreachable();
}

static void *zl_memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

static void zl_memzero(void *dst, size_t n)
{
    unsigned char *d = dst;
    while (n--) *d++ = 0;
}

static long map(uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t off)
{
    return sys6(SYS_mmap, (long)addr, (long)len, prot, flags | MAP_FIXED_NOREPLACE, fd, (long)off);
}

static uint64_t page_down(uint64_t v) { return v & ~(PAGE - 1); }
static uint64_t page_up(uint64_t v) { return (v + PAGE - 1) & ~(PAGE - 1); }

/* Bytes of the layout file to map: up to the end of its last part. */
static uint64_t layout_end(const struct zl_layout *h)
{
    uint64_t end = h->filter_off + h->filter_len * 8;
    if (end < h->manifest_off + h->manifest_len) end = h->manifest_off + h->manifest_len;
    if (h->warm_len && end < h->warm_off + h->warm_len * sizeof(struct zl_warm))
        end = h->warm_off + h->warm_len * sizeof(struct zl_warm);
    return end;
}

/* Step 4a: one PT_LOAD segment, as the kernel's ELF loader would map it. */
static void map_segment(const struct zl_segment *s, int image_fd)
{
    uint64_t start = page_down(s->vaddr);
    uint64_t file_end = s->vaddr + s->filesz;
    uint64_t mem_end = page_up(s->vaddr + s->memsz);
    uint64_t file_map_end = page_up(file_end);
    int bss_in_page = s->memsz > s->filesz && (file_end & (PAGE - 1));
    if (s->filesz) {
        int prot = (int)s->prot | (bss_in_page ? PROT_WRITE : 0);
        long r = map(start, file_map_end - start, prot, MAP_PRIVATE, image_fd, page_down(s->offset));
        if (r < 0) die("map image segment", r);
        if (bss_in_page) {
            zl_memzero((void *)file_end, file_map_end - file_end);
            if (!(s->prot & PROT_WRITE)) {
                r = sys3(SYS_mprotect, start, file_map_end - start, s->prot);
                if (r < 0) die("protect image segment", r);
            }
        }
    } else {
        file_map_end = start;
    }
    if (mem_end > file_map_end) {
        long r = map(file_map_end, mem_end - file_map_end, (int)s->prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r < 0) die("map image bss", r);
    }
}

static uint64_t parse_u64(const char *p, const char *end, const char *key)
{
    size_t klen = 0;
    while (key[klen]) klen++;
    for (; p + klen < end; p++) {
        size_t i = 0;
        while (i < klen && p[i] == key[i]) i++;
        if (p[-1] == '\n' && i == klen) {
            p += klen;
            while (p < end && (*p == ' ' || *p == ':')) p++;
            uint64_t v = 0;
            while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
            return v;
        }
    }
    return 0;
}

/* Step 6: the I/O counters so far (exec and this read itself), so that the
 * supervisor can subtract them from the guest's final counters. `fd` is
 * /proc/self/io, opened by the child before exec; if that failed, the read
 * fails and the report has no direct-channel counts. */
static void read_io_baseline(struct zl_hello *h, int fd)
{
    static char buf[1024];
    h->valid = 0;
    buf[0] = '\n';
    long n = sys3(SYS_read, fd, buf + 1, sizeof buf - 2);
    sys3(SYS_close, fd, 0, 0);
    if (n <= 0) return;
    const char *end = buf + 1 + n;
    h->rchar = parse_u64(buf + 1, end, "rchar") + (uint64_t)n; /* this read */
    h->wchar = parse_u64(buf + 1, end, "wchar");
    h->syscr = parse_u64(buf + 1, end, "syscr") + 1;
    h->syscw = parse_u64(buf + 1, end, "syscw");
    h->valid = 1;
}

unsigned char loader_stack[64 * 1024] __attribute__((aligned(16), used));

/* Holder mode (`zerolab-nsholder h`, run as root with its socket on fd 0):
 * creates the mount, ipc and uts namespaces that a root supervisor's guests
 * share (each guest still gets its own pid namespace), says "k", and keeps
 * them alive until the supervisor has opened them and closes the socket. */
static __attribute__((noreturn)) void hold_namespaces(void)
{
    char byte = 'k';
    if (sys3(SYS_unshare, CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS, 0, 0) < 0 ||
        sys6(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0, 0) < 0 ||
        sys3(SYS_sethostname, "zerolab", 7, 0) < 0 || sys3(SYS_write, 0, &byte, 1) != 1)
        sys3(SYS_exit_group, 121, 0, 0);
    sys3(SYS_read, 0, &byte, 1);
    sys3(SYS_exit_group, 0, 0, 0);
    __builtin_unreachable();
}

/* Step 4c, first, a pool slot: maps the image's pages that the page cache
 * holds (mincore), read-only, so its job does not fault on them to read:
 * page tables only, no copies (a write still copies its page). Where the
 * kernel lacks MADV_POPULATE_READ, nothing is mapped. */
static void premap(uint64_t addr, uint64_t len)
{
    static unsigned char vec[16384];
    const uint64_t chunk = sizeof vec * PAGE;
    for (uint64_t at = 0; at < len; at += chunk) {
        uint64_t n = len - at < chunk ? len - at : chunk, pages = n / PAGE, run = 0;
        if (sys3(SYS_mincore, addr + at, n, vec) < 0) return;
        for (uint64_t i = 0; i <= pages; i++) {
            if (i < pages && (vec[i] & 1)) {
                run++;
                continue;
            }
            if (run && sys3(SYS_madvise, addr + at + (i - run) * PAGE, run * PAGE, MADV_POPULATE_READ) < 0) return;
            run = 0;
        }
    }
}

/* The same for a region of the daemon's memory, mapped from `fd` at `off`:
 * its file holds only the pages the daemon touched (the rest are holes), so
 * its data extents (SEEK_DATA, SEEK_HOLE) are what to map. Asking mincore
 * about every page of a mostly empty 256 MiB heap cost a slot milliseconds of
 * CPU; the extents are a handful of calls. */
static void premap_state(uint64_t addr, uint64_t len, int fd, uint64_t off)
{
    uint64_t end = off + len;
    for (uint64_t at = off; at < end;) {
        long data = sys3(SYS_lseek, fd, (long)at, SEEK_DATA);
        if (data < 0 || (uint64_t)data >= end) return;
        long hole = sys3(SYS_lseek, fd, data, SEEK_HOLE);
        if (hole < 0) return;
        uint64_t stop = (uint64_t)hole < end ? (uint64_t)hole : end;
        if (sys3(SYS_madvise, addr + ((uint64_t)data - off), stop - (uint64_t)data, MADV_POPULATE_READ) < 0) return;
        at = stop;
    }
}

/* The same from the warm table: the pages the daemon's warm-up copy
 * touched, those it wrote copied ahead (MADV_POPULATE_WRITE breaks the
 * copy-on-write sharing here, in the slot's own memory, before the job), the
 * rest mapped to read. A run the kernel refuses is skipped. */
static void premap_warm(const struct zl_warm *w, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        sys3(SYS_madvise, w[i].addr, (uint64_t)w[i].pages * PAGE, w[i].write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
}

/* Step 4c, a pool slot: moves the socket and /proc/self/io (*io) up to
 * ZL_SLOT_FD, so that nothing is open below it, and waits for the job's
 * message: its CPU time and file size limits (two u64, set here), and N
 * channel descriptors and the job's layout, which land at 0..N. Returns N; *io is where /proc/self/io went. The supervisor closing the
 * socket (the pool ends) ends the slot. */
static long wait_for_job(int *io)
{
    long sock = sys3(SYS_fcntl, sock_fd, F_DUPFD_CLOEXEC, ZL_SLOT_FD);
    if (sock < 0) die("move the socket", sock);
    sys3(SYS_close, sock_fd, 0, 0);
    sock_fd = (int)sock;
    int was = *io;
    *io = (int)sys3(SYS_fcntl, was, F_DUPFD_CLOEXEC, ZL_SLOT_FD);
    sys3(SYS_close, was, 0, 0);
    static uint64_t limits[2];
    static struct iovec iov;
    static uint64_t control[(16 + 4 * ZL_SLOT_MAX_FDS + 7) / 8];
    static struct msghdr msg;
    iov.base = limits;
    iov.len = sizeof limits;
    msg.iov = &iov;
    msg.iovlen = 1;
    msg.control = control;
    msg.controllen = sizeof control;
    long r = sys3(SYS_recvmsg, sock, &msg, 0);
    if (r <= 0) sys3(SYS_exit_group, 0, 0, 0);
    if (r != sizeof limits) die("bad job message", r);
    /* The job's CPU time and file size limits (lower than the slot's). */
    for (int i = 0; i < 2; i++) {
        uint64_t lim[2] = { limits[i], limits[i] };
        r = sys6(SYS_prlimit64, 0, i == 0 ? RLIMIT_CPU : RLIMIT_FSIZE, (long)lim, 0, 0, 0);
        if (r < 0) die("set the job's limits", r);
    }
    const struct cmsg_fd *c = (const struct cmsg_fd *)control;
    if ((msg.flags & MSG_CTRUNC) || msg.controllen < 20 || c->level != SOL_SOCKET || c->type != SCM_RIGHTS)
        die("bad job message", 0);
    long nfd = (long)(c->len - 16) / 4;
    const int *fds = &c->fd;
    for (long i = 0; i < nfd; i++)
        if (fds[i] != i) die("job descriptors out of place", fds[i]);
    return nfd - 1;
}

void zl_main(uint64_t *kernel_sp) __attribute__((noreturn, used));

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  mov %rsp, %rdi\n"
    "  lea loader_stack+65536(%rip), %rsp\n"
    "  call zl_main\n"
    "  ud2\n");

void zl_main(uint64_t *kernel_sp)
{
    /* argv[1] is the channel count N; fds N, N+1, N+2 are socket, image,
     * layout; N+3 was this loader (closed by exec); N+4 is /proc/self/io. */
    long argc = (long)kernel_sp[0];
    const char *arg = argc > 1 ? (const char *)kernel_sp[2] : "";
    if (*arg == 'h') hold_namespaces();
    int slot = *arg == 'p';
    long nchan = 0;
    while (*arg >= '0' && *arg <= '9') nchan = nchan * 10 + (*arg++ - '0');
    sock_fd = (int)nchan;
    int image_fd = (int)nchan + 1, layout_fd = (int)nchan + 2, state_fd = (int)nchan + 4, io_fd = (int)nchan + 4;

    /* Step 1: signals were blocked by the supervisor across fork. */
    uint64_t empty = 0;
    sys6(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)&empty, 0, 8, 0, 0);

    /* Step 2: the kernel's stack (its argv and auxv) and the vDSO. The
     * vDSO's address comes from the auxv, found past argv and envp. */
    uint64_t *p = kernel_sp + 1 + argc + 1;
    while (*p) p++;
    uint64_t vdso = 0;
    for (p++; p[0]; p += 2)
        if (p[0] == AT_SYSINFO_EHDR) vdso = p[1];
    if (vdso) sys3(SYS_munmap, vdso - 16 * PAGE, 20 * PAGE, 0); /* vvar pages sit just below */
    uint64_t stack_top = page_up((uint64_t)p);
    sys3(SYS_munmap, stack_top - (64UL << 20), 64UL << 20, 0);
    /* The top page may hold strings past auxv: unmap up to 64 KiB above too. */
    sys3(SYS_munmap, stack_top, 16 * PAGE, 0);

    /* Step 3: the layout (its size is in its own header). */
    const struct zl_layout *head = (const struct zl_layout *)sys6(SYS_mmap, 0, sizeof *head, PROT_READ, MAP_PRIVATE, layout_fd, 0);
    if ((long)head < 0) die("map layout", (long)head);
    if (head->magic != ZL_MAGIC || head->channels != nchan || head->nseg > ZL_MAX_SEGMENTS) die("bad layout", 0);
    uint64_t total = layout_end(head);
    sys3(SYS_munmap, head, sizeof *head, 0);
    const unsigned char *file = (const unsigned char *)sys6(SYS_mmap, 0, (long)total, PROT_READ, MAP_PRIVATE, layout_fd, 0);
    if ((long)file < 0) die("map layout", (long)file);
    const struct zl_layout *l = (const struct zl_layout *)file;

    /* Step 4: image, heap, stack and guard, manifest area. */
    for (uint32_t i = 0; i < l->nseg; i++) map_segment(&l->seg[i], image_fd);
    if (l->heap_size) {
        long r = map(l->heap_addr, l->heap_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r < 0) die("map heap", r);
    }
    long r = map(l->stack_lo - PAGE, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r < 0) die("map stack guard", r);
    r = map(l->stack_lo, l->stack_hi - l->stack_lo, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r < 0) die("map stack", r);
    zl_memcpy((void *)l->initial_sp, file + l->stack_image_off, l->stack_hi - l->initial_sp);
    if (!slot) {
        r = map(ZL_MANIFEST_ADDR, l->manifest_len, PROT_READ, MAP_PRIVATE, layout_fd, l->manifest_off);
        if (r < 0) die("map manifest", r);
    }
    /* Step 4b: a daemon's copy gets the daemon's memory, copy-on-write. */
    uint64_t entry = l->entry, sp = l->initial_sp;
    if (l->resume_sp) {
        if (l->nregion > ZL_MAX_REGIONS) die("bad layout", 0);
        for (uint64_t i = 0; i < l->nregion; i++) {
            const struct zl_region *g = &l->region[i];
            r = sys6(SYS_mmap, (long)g->addr, (long)g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, state_fd,
                     (long)g->off);
            if (r != (long)g->addr) die("map daemon memory", r);
        }
        if (!slot) sys3(SYS_close, state_fd, 0, 0);
        entry = ZL_FORK_RESUME;
        sp = l->resume_sp;
        io_fd = state_fd + 1;
    }
    /* Step 4c: a pool slot waits for its job (wait_for_job). */
    if (slot) {
        if (!l->resume_sp) die("bad layout", 0);
        if (l->warm_len) {
            if (l->warm_len > ZL_MAX_WARM) die("bad layout", 0);
            premap_warm((const struct zl_warm *)(file + l->warm_off), l->warm_len);
        } else {
            for (uint32_t i = 0; i < l->nseg; i++)
                premap(page_down(l->seg[i].vaddr), page_up(l->seg[i].vaddr + l->seg[i].memsz) - page_down(l->seg[i].vaddr));
            for (uint64_t i = 0; i < l->nregion; i++) premap_state(l->region[i].addr, l->region[i].len, state_fd, l->region[i].off);
        }
        sys3(SYS_close, state_fd, 0, 0);
        sys3(SYS_munmap, file, total, 0);
        sys3(SYS_close, image_fd, 0, 0);
        sys3(SYS_close, layout_fd, 0, 0);
        nchan = wait_for_job(&io_fd);
        layout_fd = (int)nchan;
        head = (const struct zl_layout *)sys6(SYS_mmap, 0, sizeof *head, PROT_READ, MAP_PRIVATE, layout_fd, 0);
        if ((long)head < 0) die("map job layout", (long)head);
        if (head->magic != ZL_MAGIC || head->channels != nchan) die("bad job layout", 0);
        total = layout_end(head);
        sys3(SYS_munmap, head, sizeof *head, 0);
        file = (const unsigned char *)sys6(SYS_mmap, 0, (long)total, PROT_READ, MAP_PRIVATE, layout_fd, 0);
        if ((long)file < 0) die("map job layout", (long)file);
        l = (const struct zl_layout *)file;
        r = map(ZL_MANIFEST_ADDR, l->manifest_len, PROT_READ, MAP_PRIVATE, layout_fd, l->manifest_off);
        if (r < 0) die("map manifest", r);
        /* The socket takes the layout's place at N (closing it); then the
         * table is the channels and the socket, as for any guest. */
        r = sys3(SYS_dup2, sock_fd, nchan, 0);
        if (r < 0) die("place the socket", r);
        sys3(SYS_close, sock_fd, 0, 0);
        sock_fd = (int)nchan;
        image_fd = layout_fd = -1;
    }

    /* Step 5: the guest keeps only its channels and the socket. */
    struct sock_fprog prog = { (unsigned short)l->filter_len, (void *)(file + l->filter_off) };
    static unsigned char filter_copy[65536] __attribute__((aligned(8)));
    if (l->filter_len * 8 > sizeof filter_copy) die("filter too large", 0);
    zl_memcpy(filter_copy, prog.filter, l->filter_len * 8);
    prog.filter = filter_copy;
    sys3(SYS_munmap, file, total, 0);
    if (image_fd >= 0) sys3(SYS_close, image_fd, 0, 0);
    if (layout_fd >= 0) sys3(SYS_close, layout_fd, 0, 0);

    /* Step 6. */
    static struct zl_hello hello;
    read_io_baseline(&hello, io_fd);

    /* Step 7a. */
    r = sys3(SYS_prctl, PR_SET_TSC, PR_TSC_SIGSEGV, 0);
    if (r < 0) die("make rdtsc fault", r);
    /* Step 7b: ENODEV is the one refusal allowed (no CPUID faulting here). */
    r = sys3(SYS_arch_prctl, ARCH_SET_CPUID, 0, 0);
    if (r < 0 && r != -ENODEV) die("make cpuid fault", r);
    /* Step 7c. */
    static struct kernel_sigaction ignore = { SIG_IGN, 0, 0, 0 };
    r = sys6(SYS_rt_sigaction, SIGXFSZ, (long)&ignore, 0, 8, 0, 0);
    if (r < 0) die("ignore SIGXFSZ", r);

    /* Step 8: the filter; the listener fd is the lowest free one, N+1. */
    long listener = sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) die("install seccomp filter", listener);
    /* From here on no system call may come from this file. */

    /* Step 9. */
    static struct iovec iov;
    static struct cmsg_fd cmsg;
    static struct msghdr msg;
    iov.base = &hello;
    iov.len = sizeof hello;
    cmsg.len = 20; /* CMSG_LEN(sizeof(int)) */
    cmsg.level = SOL_SOCKET;
    cmsg.type = SCM_RIGHTS;
    cmsg.fd = (int)listener;
    msg.iov = &iov;
    msg.iovlen = 1;
    msg.control = &cmsg;
    msg.controllen = 24; /* CMSG_SPACE(sizeof(int)) */
    ZL_ENTER(&msg, sock_fd, entry, sp, listener);
}
