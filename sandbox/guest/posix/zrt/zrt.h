/*
 * zrt.h - the zerolab runtime (our ZRT): internal interface.
 *
 * The runtime is guest code linked into every zvm-cc program. musl's system
 * calls arrive at __zrt_syscall (syscall.c) as plain function calls; each is
 * answered here from the guest's own memory and the six calls of zvm.h, or
 * refused with a negated errno. The runtime has the guest's powers and no
 * more: whatever it does wrong, the jail still bounds it.
 *
 * Parts: syscall.c (the handler table), mem.c (mmap/munmap/brk over the
 * preallocated heap), fs.c (the file tree: tar images read-only, an
 * in-memory overlay), tar.c (an image's members into the tree), fd.c
 * (descriptors over channels and files), misc.c (clock, randomness, nvram).
 *
 * Rules for this code: it never touches errno (it may run before the thread
 * pointer is set), never calls malloc (it serves malloc's own mmap), and
 * returns results the way the kernel does: a value >= 0 or -errno.
 */
#ifndef ZRT_H
#define ZRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>
#include "zvm.h"

#define ZRT_PAGE 4096UL

/* mem.c */
long zrt_mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, off_t off);
long zrt_munmap(uintptr_t addr, size_t len);
long zrt_mremap(uintptr_t old, size_t old_len, size_t new_len, int flags);
long zrt_brk(uintptr_t addr);
long zrt_mprotect(uintptr_t addr, size_t len, int prot);
/* Pages for the runtime's own tables (zeroed), or NULL. */
void *zrt_pages(size_t len);
void zrt_pages_free(void *p, size_t len);

/* fs.c: the file tree. Nodes are indices; 0 is the root directory. */
enum zrt_kind { ZRT_FREE = 0, ZRT_DIR, ZRT_FILE, ZRT_LINK, ZRT_CHAN };
struct zrt_node {
    const char *name;  /* last component */
    uint32_t name_len;
    uint32_t parent;   /* node index */
    uint32_t hnext;    /* hash chain: next node index + 1 (0 ends) */
    uint8_t kind;
    uint8_t in_tar;    /* data is still the image's: read through the channel */
    uint16_t pad;
    uint32_t mode;     /* permission bits */
    int32_t chan;      /* ZRT_CHAN: the channel; in_tar: the image's channel */
    int64_t size;
    int64_t tar_off;   /* in_tar: offset of the data in the image */
    char *data;        /* overlay contents (ZRT_FILE, !in_tar) or link target */
    int64_t cap;       /* bytes allocated at data */
    int64_t mtime;
};
void zrt_fs_init(void);
struct zrt_node *zrt_node(uint32_t i);
uint32_t zrt_node_count(void);
/* Resolves `path` (relative to cwd) to a node; `follow` follows a final link. */
long zrt_lookup(const char *path, int follow, uint32_t *out);
/* Creates a node `path` of `kind` (its parent must exist): the index or -errno. */
long zrt_create(const char *path, int kind, uint32_t mode, uint32_t *out);
long zrt_remove(const char *path, int dir);
long zrt_rename(const char *from, const char *to);
long zrt_chdir(const char *path);
long zrt_getcwd(char *buf, size_t size);
/* The absolute path of node i in buf: its length with the NUL, or -ERANGE. */
long zrt_node_path(uint32_t i, char *buf, size_t size);
/* Adds (or replaces) the entry at `path`, making its directories: the index or -errno. */
long zrt_put(const char *path, size_t len, int kind, uint32_t mode);
/* A copy of `name` (len bytes) kept for the guest's life, NUL-terminated. */
const char *zrt_keep_name(const char *name, size_t len);

/* zvm_fork for fork(): 0 in a daemon's copy (the tree rewired to its channels), or -errno. */
long zrt_fork(void);

/* tar.c: indexes the tar on channel c under mount (an absolute path, "" for /). */
long zrt_mount_tar(int c, const char *mount);
void zrt_stat_node(uint32_t i, struct stat *st);
/* Reads/writes a file node's bytes; writes copy an image file into the overlay first. */
long zrt_node_pread(uint32_t i, void *buf, size_t n, int64_t off);
long zrt_node_pwrite(uint32_t i, const void *buf, size_t n, int64_t off);
long zrt_node_truncate(uint32_t i, int64_t size);

/* fd.c */
void zrt_fd_init(void);
long zrt_openat(int dirfd, const char *path, int flags, int mode);
long zrt_close(int fd);
long zrt_read(int fd, void *buf, size_t n);
long zrt_write(int fd, const void *buf, size_t n);
long zrt_pread(int fd, void *buf, size_t n, int64_t off);
long zrt_pwrite(int fd, const void *buf, size_t n, int64_t off);
long zrt_lseek(int fd, int64_t off, int whence);
long zrt_fstat(int fd, struct stat *st);
long zrt_fstatat(int dirfd, const char *path, struct stat *st, int flags);
long zrt_getdents64(int fd, void *buf, size_t n);
long zrt_dup(int fd, int min, int exact, int cloexec);
long zrt_fcntl(int fd, int cmd, long arg);
long zrt_ftruncate(int fd, int64_t size);
long zrt_ioctl(int fd, unsigned long req, long arg);
long zrt_fd_check(int fd);
/* A path relative to dirfd made absolute-or-cwd-relative for the tree; -errno on error. */
long zrt_at_path(int dirfd, const char *path, char *out, size_t size);

/* misc.c */
long zrt_clock_gettime(int clk, struct timespec *ts);
long zrt_getrandom(void *buf, size_t n, unsigned flags);
long zrt_sleep(const struct timespec *ts);
/* Mounts the images /dev/nvram's [fstab] names. */
void zrt_nvram(void);
int64_t zrt_now_ns(void);

/* The channel named `alias`, or -1. */
int zrt_channel(const char *alias);

#endif
