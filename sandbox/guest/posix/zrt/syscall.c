/*
 * syscall.c - the handler table: every system call musl makes lands here.
 *
 * Like ZRT's handler table, one entry per call: implemented by the runtime
 * (files, memory, time, identity), answered with a harmless constant where a
 * single-process jail makes the answer certain (getpid is 1, signal masks
 * change nothing, no lock is ever contended), or refused with a clear errno:
 * ENOSYS for process creation and execution (no clone, execve; fork is
 * zvm_fork, which only a daemon's copies return from),
 * EACCES for the network (no sockets), ENOSYS for everything not listed.
 * The runtime is initialised on the first call (musl's start-up sets its
 * thread pointer first): the tree, /dev/<alias> for the channels, the images
 * from /dev/nvram, descriptors 0-2.
 */
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include "zrt.h"

#define ARCH_SET_FS 0x1002

static void init(void)
{
    static int ready;
    if (ready)
        return;
    ready = 1;
    zrt_fs_init();
    zrt_nvram();
    zrt_fd_init();
}

static long vector(int fd, const struct iovec *iov, long cnt, int write, int64_t off)
{
    long total = 0;
    if (cnt < 0 || cnt > 1024)
        return -EINVAL;
    for (long i = 0; i < cnt; i++) {
        if (!iov[i].iov_len)
            continue;
        long r;
        if (off < 0)
            r = write ? zrt_write(fd, iov[i].iov_base, iov[i].iov_len) : zrt_read(fd, iov[i].iov_base, iov[i].iov_len);
        else
            r = write ? zrt_pwrite(fd, iov[i].iov_base, iov[i].iov_len, off + total)
                      : zrt_pread(fd, iov[i].iov_base, iov[i].iov_len, off + total);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

static long at(long (*op)(const char *), int dirfd, const char *path)
{
    char full[4096];
    long r = zrt_at_path(dirfd, path, full, sizeof full);
    return r < 0 ? r : op(full);
}

static long rmdir_path(const char *p) { return zrt_remove(p, 1); }
static long unlink_path(const char *p) { return zrt_remove(p, 0); }

static long mkdir_path(const char *p)
{
    uint32_t node;
    return zrt_create(p, ZRT_DIR, 0755, &node);
}

static long access_path(const char *p)
{
    uint32_t node;
    return zrt_lookup(p, 1, &node);
}

static long rename_at(int fd1, const char *from, int fd2, const char *to)
{
    char a[4096], b[4096];
    long r = zrt_at_path(fd1, from, a, sizeof a);
    if (r >= 0)
        r = zrt_at_path(fd2, to, b, sizeof b);
    return r < 0 ? r : zrt_rename(a, b);
}

static long readlink_at(int dirfd, const char *path, char *buf, size_t n)
{
    char full[4096];
    uint32_t node;
    long r = zrt_at_path(dirfd, path, full, sizeof full);
    if (r >= 0)
        r = zrt_lookup(full, 0, &node);
    if (r < 0)
        return r;
    struct zrt_node *l = zrt_node(node);
    if (l->kind != ZRT_LINK)
        return -EINVAL;
    size_t len = strlen(l->data);
    if (len > n)
        len = n;
    memcpy(buf, l->data, len);
    return (long)len;
}

static long uname_(struct utsname *u)
{
    memset(u, 0, sizeof *u);
    strcpy(u->sysname, "ZeroVM");
    strcpy(u->nodename, "zerolab");
    strcpy(u->release, "2.0.0");
    strcpy(u->version, "zerolab");
    strcpy(u->machine, "x86_64");
    return 0;
}

static long rlimit(int res, const struct rlimit *new, struct rlimit *old)
{
    if (new)
        return -EPERM;
    if (old) {
        old->rlim_cur = old->rlim_max = RLIM_INFINITY;
        if (res == RLIMIT_STACK)
            old->rlim_cur = old->rlim_max = MANIFEST->stack_size;
        if (res == RLIMIT_AS || res == RLIMIT_DATA)
            old->rlim_cur = old->rlim_max = MANIFEST->heap_size;
        if (res == RLIMIT_NOFILE)
            old->rlim_cur = old->rlim_max = 1024;
    }
    return 0;
}

/* musl's getloadavg ignores sysinfo's result, so an answer it must have:
 * the guest's own memory, its clock's uptime, no load. */
static long sysinfo_(struct sysinfo *si)
{
    struct timespec ts;
    zrt_clock_gettime(CLOCK_MONOTONIC, &ts);
    memset(si, 0, sizeof *si);
    si->uptime = ts.tv_sec;
    si->totalram = si->freeram = MANIFEST->heap_size;
    si->procs = 1;
    si->mem_unit = 1;
    return 0;
}

static long kill_self(int sig)
{
    /* A signal the guest sends itself (abort, raise): it ends, as the
     * default action would, with 128 + the signal as its return code. */
    if (sig == 0)
        return 0;
    zvm_exit(128 + sig);
}

__attribute__((visibility("hidden"))) long __zrt_syscall(long n, long a, long b, long c, long d, long e, long f);

long __zrt_syscall(long n, long a, long b, long c, long d, long e, long f)
{
    (void)f;
    init();
    switch (n) {
    /* files */
    case SYS_read: return zrt_read((int)a, (void *)b, (size_t)c);
    case SYS_write: return zrt_write((int)a, (const void *)b, (size_t)c);
    case SYS_pread64: return zrt_pread((int)a, (void *)b, (size_t)c, d);
    case SYS_pwrite64: return zrt_pwrite((int)a, (const void *)b, (size_t)c, d);
    case SYS_readv: return vector((int)a, (const struct iovec *)b, c, 0, -1);
    case SYS_writev: return vector((int)a, (const struct iovec *)b, c, 1, -1);
    case SYS_preadv: return vector((int)a, (const struct iovec *)b, c, 0, d < 0 ? -EINVAL : d);
    case SYS_pwritev: return vector((int)a, (const struct iovec *)b, c, 1, d < 0 ? -EINVAL : d);
    case SYS_open: return zrt_openat(AT_FDCWD, (const char *)a, (int)b, (int)c);
    case SYS_openat: return zrt_openat((int)a, (const char *)b, (int)c, (int)d);
    case SYS_creat: return zrt_openat(AT_FDCWD, (const char *)a, O_CREAT | O_WRONLY | O_TRUNC, (int)b);
    case SYS_close: return zrt_close((int)a);
    case SYS_lseek: return zrt_lseek((int)a, b, (int)c);
    case SYS_stat: return zrt_fstatat(AT_FDCWD, (const char *)a, (struct stat *)b, 0);
    case SYS_lstat: return zrt_fstatat(AT_FDCWD, (const char *)a, (struct stat *)b, AT_SYMLINK_NOFOLLOW);
    case SYS_fstat: return zrt_fstat((int)a, (struct stat *)b);
    case SYS_newfstatat: return zrt_fstatat((int)a, (const char *)b, (struct stat *)c, (int)d);
    case SYS_getdents64: return zrt_getdents64((int)a, (void *)b, (size_t)c);
    case SYS_dup: return zrt_dup((int)a, 0, 0, 0);
    case SYS_dup2: return zrt_fd_check((int)a) < 0 ? -EBADF : zrt_dup((int)a, (int)b, 1, 0);
    case SYS_dup3: return a == b ? -EINVAL : zrt_dup((int)a, (int)b, 1, !!(c & O_CLOEXEC));
    case SYS_fcntl: return zrt_fcntl((int)a, (int)b, c);
    case SYS_ioctl: return zrt_ioctl((int)a, (unsigned long)b, c);
    case SYS_ftruncate: return zrt_ftruncate((int)a, b);
    case SYS_fsync:
    case SYS_fdatasync:
    case SYS_fadvise64: return zrt_fd_check((int)a);
    case SYS_access: return access_path((const char *)a);
    case SYS_faccessat:
    case SYS_faccessat2: return at(access_path, (int)a, (const char *)b);
    case SYS_mkdir: return mkdir_path((const char *)a);
    case SYS_mkdirat: return at(mkdir_path, (int)a, (const char *)b);
    case SYS_rmdir: return rmdir_path((const char *)a);
    case SYS_unlink: return unlink_path((const char *)a);
    case SYS_unlinkat: return at(c & AT_REMOVEDIR ? rmdir_path : unlink_path, (int)a, (const char *)b);
    case SYS_rename: return zrt_rename((const char *)a, (const char *)b);
    case SYS_renameat: return rename_at((int)a, (const char *)b, (int)c, (const char *)d);
    case SYS_renameat2: return e ? -EINVAL : rename_at((int)a, (const char *)b, (int)c, (const char *)d);
    case SYS_readlink: return readlink_at(AT_FDCWD, (const char *)a, (char *)b, (size_t)c);
    case SYS_readlinkat: return readlink_at((int)a, (const char *)b, (char *)c, (size_t)d);
    case SYS_chdir: return zrt_chdir((const char *)a);
    case SYS_getcwd: return zrt_getcwd((char *)a, (size_t)b);
    case SYS_umask: return 022;
    case SYS_chmod:
    case SYS_fchmodat:
    case SYS_utimensat: return 0; /* one user, no permissions to change */
    case SYS_fchmod: return zrt_fd_check((int)a);
    /* memory */
    case SYS_mmap: return zrt_mmap((uintptr_t)a, (size_t)b, (int)c, (int)d, (int)e, f);
    case SYS_munmap: return zrt_munmap((uintptr_t)a, (size_t)b);
    case SYS_mremap: return zrt_mremap((uintptr_t)a, (size_t)b, (size_t)c, (int)d);
    case SYS_brk: return zrt_brk((uintptr_t)a);
    case SYS_mprotect: return zrt_mprotect((uintptr_t)a, (size_t)b, (int)c);
    case SYS_madvise: return 0;
    /* time and randomness: the guest's own, deterministic */
    case SYS_clock_gettime: return zrt_clock_gettime((int)a, (struct timespec *)b);
    case SYS_clock_getres:
        if (b)
            *(struct timespec *)b = (struct timespec){ 0, 1000 };
        return 0;
    case SYS_gettimeofday: {
        struct timespec ts;
        zrt_clock_gettime(CLOCK_REALTIME, &ts);
        if (a) {
            long *tv = (long *)a;
            tv[0] = ts.tv_sec;
            tv[1] = ts.tv_nsec / 1000;
        }
        return 0;
    }
    case SYS_time: {
        struct timespec ts;
        zrt_clock_gettime(CLOCK_REALTIME, &ts);
        if (a)
            *(long *)a = ts.tv_sec;
        return ts.tv_sec;
    }
    case SYS_nanosleep: return zrt_sleep((const struct timespec *)a);
    case SYS_clock_nanosleep: return c & 1 /* TIMER_ABSTIME */ ? 0 : zrt_sleep((const struct timespec *)c);
    case SYS_getrandom: return zrt_getrandom((void *)a, (size_t)b, (unsigned)c);
    /* the process: one, alone, in its own world */
    case SYS_exit:
    case SYS_exit_group: zvm_exit(a);
    case SYS_arch_prctl: return a == ARCH_SET_FS ? zvm_set_fs((void *)b) : -EINVAL;
    case SYS_set_tid_address:
    case SYS_getpid:
    case SYS_gettid:
    case SYS_getppid: return 1;
    case SYS_getuid:
    case SYS_geteuid:
    case SYS_getgid:
    case SYS_getegid: return 0;
    case SYS_uname: return uname_((struct utsname *)a);
    case SYS_sysinfo: return sysinfo_((struct sysinfo *)a);
    case SYS_getrlimit: return rlimit((int)a, NULL, (struct rlimit *)b);
    case SYS_prlimit64: return a && a != 1 ? -ESRCH : rlimit((int)b, (const struct rlimit *)c, (struct rlimit *)d);
    case SYS_sched_yield: return 0;
    case SYS_rt_sigaction:
        if (c)
            memset((void *)c, 0, 32); /* no handler was set */
        return 0;
    case SYS_rt_sigprocmask:
        if (c)
            memset((void *)c, 0, (size_t)d);
        return 0;
    case SYS_sigaltstack: return 0;
    case SYS_tkill: return kill_self((int)b);
    case SYS_tgkill: return kill_self((int)c);
    case SYS_kill: return a == 1 || a == 0 ? kill_self((int)b) : -ESRCH;
    case SYS_futex: return (b & 127) == 1 /* FUTEX_WAKE */ ? 0 : -EAGAIN;
    case SYS_wait4:
    case SYS_waitid: return -ECHILD;
    /* fork is zvm_fork: 0 in each job's copy of a daemon, else ENOSYS */
    case SYS_fork: return zrt_fork();
    /* refused: no new processes, no programs, no network */
    case SYS_vfork:
    case SYS_clone:
    case SYS_clone3:
    case SYS_execve:
    case SYS_execveat: return -ENOSYS;
    case SYS_socket:
    case SYS_socketpair:
    case SYS_connect:
    case SYS_bind:
    case SYS_listen:
    case SYS_accept:
    case SYS_accept4: return -EACCES;
    default: return -ENOSYS;
    }
}
