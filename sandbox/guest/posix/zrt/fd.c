/*
 * fd.c - file descriptors.
 *
 * A descriptor is a node of the tree (fs.c) and a position: a channel under
 * /dev (0, 1 and 2 start open on /dev/stdin, /dev/stdout, /dev/stderr), an
 * image file, an overlay file or a directory. Channel I/O is zvm_pread and
 * zvm_pwrite: a sequential channel ignores the position (ZeroVM's rule), a
 * random one uses it. Descriptors are numbered lowest-free first, as POSIX
 * requires, up to FD_MAX.
 */
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include "zrt.h"

#define FD_MAX 1024

struct fdesc {
    uint8_t used, cloexec;
    int flags;       /* O_ACCMODE | O_APPEND | O_NONBLOCK ... as opened */
    uint32_t node;
    int64_t pos;
};
static struct fdesc fds[FD_MAX];

static const struct ZVMChannel *chan(int c) { return &MANIFEST->channels[c]; }
static int readable(int c) { return chan(c)->limits[GetsLimit] > 0 && chan(c)->limits[GetSizeLimit] > 0; }
static int writable(int c) { return chan(c)->limits[PutsLimit] > 0 && chan(c)->limits[PutSizeLimit] > 0; }

int zrt_channel(const char *alias)
{
    for (int64_t i = 0; i < MANIFEST->channels_count; i++)
        if (chan((int)i)->name && strcmp(chan((int)i)->name, alias) == 0)
            return (int)i;
    return -1;
}

static struct fdesc *get(int fd)
{
    return fd >= 0 && fd < FD_MAX && fds[fd].used ? &fds[fd] : NULL;
}

static long install(uint32_t node, int flags, int min)
{
    for (int fd = min < 0 ? 0 : min; fd < FD_MAX; fd++)
        if (!fds[fd].used) {
            fds[fd] = (struct fdesc){ .used = 1, .cloexec = !!(flags & O_CLOEXEC),
                                      .flags = flags & ~O_CLOEXEC, .node = node };
            return fd;
        }
    return -EMFILE;
}

void zrt_fd_init(void)
{
    static const char *const std[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
    for (int fd = 0; fd < 3; fd++) {
        uint32_t node;
        if (zrt_lookup(std[fd], 1, &node) == 0)
            fds[fd] = (struct fdesc){ .used = 1, .flags = fd ? O_WRONLY : O_RDONLY, .node = node };
    }
}

long zrt_fd_check(int fd) { return get(fd) ? 0 : -EBADF; }

long zrt_at_path(int dirfd, const char *path, char *out, size_t size)
{
    size_t n = strlen(path);
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        if (n + 1 > size)
            return -ENAMETOOLONG;
        memcpy(out, path, n + 1);
        return 0;
    }
    struct fdesc *d = get(dirfd);
    if (!d)
        return -EBADF;
    if (zrt_node(d->node)->kind != ZRT_DIR)
        return -ENOTDIR;
    long len = zrt_node_path(d->node, out, size);
    if (len < 0 || (size_t)len + n + 1 > size)
        return -ENAMETOOLONG;
    out[len - 1] = '/';
    memcpy(out + len, path, n + 1);
    return 0;
}

long zrt_openat(int dirfd, const char *path, int flags, int mode)
{
    char full[4096];
    long r = zrt_at_path(dirfd, path, full, sizeof full);
    if (r < 0)
        return r;
    uint32_t node;
    int acc = flags & O_ACCMODE;
    if (flags & O_CREAT) {
        r = zrt_create(full, ZRT_FILE, (uint32_t)mode, &node);
        if (r == -EEXIST && (flags & O_EXCL))
            return -EEXIST;
        if (r == -EEXIST) {
            r = zrt_lookup(full, !(flags & O_NOFOLLOW), &node);
            if (r < 0)
                return r;
        } else if (r < 0) {
            return r;
        }
    } else {
        r = zrt_lookup(full, !(flags & O_NOFOLLOW), &node);
        if (r < 0)
            return r;
    }
    struct zrt_node *n = zrt_node(node);
    if (n->kind == ZRT_LINK)
        return -ELOOP;
    if ((flags & O_DIRECTORY) && n->kind != ZRT_DIR)
        return -ENOTDIR;
    if (n->kind == ZRT_DIR && acc != O_RDONLY)
        return -EISDIR;
    if (n->kind == ZRT_CHAN) {
        if ((acc != O_WRONLY && !readable(n->chan)) || (acc != O_RDONLY && !writable(n->chan)))
            return -EACCES;
    } else if (n->kind == ZRT_FILE && (flags & O_TRUNC) && acc != O_RDONLY) {
        r = zrt_node_truncate(node, 0);
        if (r < 0)
            return r;
    }
    return install(node, flags, 0);
}

long zrt_close(int fd)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    d->used = 0;
    return 0;
}

long zrt_pread(int fd, void *buf, size_t n, int64_t off)
{
    struct fdesc *d = get(fd);
    if (!d || (d->flags & O_ACCMODE) == O_WRONLY)
        return -EBADF;
    if (off < 0)
        return -EINVAL;
    struct zrt_node *nd = zrt_node(d->node);
    if (nd->kind == ZRT_DIR)
        return -EISDIR;
    if (nd->kind == ZRT_CHAN) {
        if (!n)
            return 0;
        int64_t r = zvm_pread(nd->chan, buf, (int64_t)n, (chan(nd->chan)->type & 1) ? off : 0);
        return r == -EINVAL ? -EBADF : (long)r;
    }
    return zrt_node_pread(d->node, buf, n, off);
}

long zrt_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
    struct fdesc *d = get(fd);
    if (!d || (d->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (off < 0)
        return -EINVAL;
    struct zrt_node *nd = zrt_node(d->node);
    if (nd->kind == ZRT_CHAN) {
        if (!n)
            return 0;
        int64_t r = zvm_pwrite(nd->chan, buf, (int64_t)n, (chan(nd->chan)->type & 2) ? off : 0);
        return r == -EINVAL ? -EBADF : (long)r;
    }
    return zrt_node_pwrite(d->node, buf, n, off);
}

long zrt_read(int fd, void *buf, size_t n)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    long r = zrt_pread(fd, buf, n, d->pos);
    if (r > 0)
        d->pos += r;
    return r;
}

long zrt_write(int fd, const void *buf, size_t n)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    struct zrt_node *nd = zrt_node(d->node);
    if ((d->flags & O_APPEND) && nd->kind == ZRT_FILE)
        d->pos = nd->size;
    long r = zrt_pwrite(fd, buf, n, d->pos);
    if (r > 0)
        d->pos += r;
    return r;
}

long zrt_lseek(int fd, int64_t off, int whence)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    struct zrt_node *nd = zrt_node(d->node);
    int64_t size = nd->size;
    if (nd->kind == ZRT_CHAN) {
        if (!(chan(nd->chan)->type & 3))
            return -ESPIPE; /* a sequential channel is a stream */
        size = chan(nd->chan)->size;
    }
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? d->pos : whence == SEEK_END ? size : -1;
    if (base < 0 || (off > 0 && base > INT64_MAX - off) || base + off < 0)
        return -EINVAL;
    d->pos = base + off;
    return (long)d->pos;
}

long zrt_fstat(int fd, struct stat *st)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    zrt_stat_node(d->node, st);
    return 0;
}

long zrt_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    if (!*path && (flags & AT_EMPTY_PATH))
        return zrt_fstat(dirfd, st);
    char full[4096];
    long r = zrt_at_path(dirfd, path, full, sizeof full);
    if (r < 0)
        return r;
    uint32_t node;
    r = zrt_lookup(full, !(flags & AT_SYMLINK_NOFOLLOW), &node);
    if (r < 0)
        return r;
    zrt_stat_node(node, st);
    return 0;
}

/* Entries: "." at position 0, ".." at 1, then node k at position k + 2. */
long zrt_getdents64(int fd, void *buf, size_t n)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    if (zrt_node(d->node)->kind != ZRT_DIR)
        return -ENOTDIR;
    size_t used = 0;
    uint32_t count = zrt_node_count();
    for (; d->pos < (int64_t)count + 2; d->pos++) {
        const char *name;
        size_t len;
        uint32_t ino;
        uint8_t type = DT_DIR;
        if (d->pos < 2) {
            name = d->pos ? ".." : ".";
            len = (size_t)d->pos + 1;
            ino = d->pos ? zrt_node(d->node)->parent + 1 : d->node + 1;
        } else {
            uint32_t k = (uint32_t)(d->pos - 2);
            struct zrt_node *c = zrt_node(k);
            if (k == 0 || c->parent != d->node || c->kind == ZRT_FREE)
                continue;
            name = c->name;
            len = c->name_len;
            ino = k + 1;
            type = c->kind == ZRT_DIR ? DT_DIR : c->kind == ZRT_LINK ? DT_LNK : c->kind == ZRT_CHAN ? DT_CHR : DT_REG;
        }
        size_t reclen = (offsetof(struct dirent, d_name) + len + 1 + 7) & ~(size_t)7;
        if (used + reclen > n)
            return used ? (long)used : -EINVAL;
        struct dirent *e = (struct dirent *)((char *)buf + used);
        e->d_ino = ino;
        e->d_off = d->pos + 1;
        e->d_reclen = (unsigned short)reclen;
        e->d_type = type;
        memcpy(e->d_name, name, len);
        e->d_name[len] = 0;
        used += reclen;
    }
    return (long)used;
}

long zrt_dup(int fd, int min, int exact, int cloexec)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    if (min < 0 || min >= FD_MAX)
        return exact ? -EBADF : -EINVAL;
    if (exact) {
        if (min == fd)
            return fd;
        fds[min] = *d;
        fds[min].cloexec = (uint8_t)cloexec;
        return min;
    }
    long r = install(d->node, d->flags | (cloexec ? O_CLOEXEC : 0), min);
    if (r >= 0)
        fds[r].pos = d->pos;
    return r;
}

long zrt_fcntl(int fd, int cmd, long arg)
{
    struct fdesc *d = get(fd);
    if (!d)
        return -EBADF;
    switch (cmd) {
    case F_DUPFD:
        return zrt_dup(fd, (int)arg, 0, 0);
    case F_DUPFD_CLOEXEC:
        return zrt_dup(fd, (int)arg, 0, 1);
    case F_GETFD:
        return d->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
        d->cloexec = !!(arg & FD_CLOEXEC);
        return 0;
    case F_GETFL:
        return d->flags;
    case F_SETFL:
        d->flags = (d->flags & O_ACCMODE) | ((int)arg & (O_APPEND | O_NONBLOCK));
        return 0;
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
        return 0; /* no other process can hold a lock */
    default:
        return -EINVAL;
    }
}

long zrt_ftruncate(int fd, int64_t size)
{
    struct fdesc *d = get(fd);
    if (!d || (d->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (zrt_node(d->node)->kind != ZRT_FILE)
        return -EINVAL;
    return zrt_node_truncate(d->node, size);
}

long zrt_ioctl(int fd, unsigned long req, long arg)
{
    (void)req;
    (void)arg;
    return get(fd) ? -ENOTTY : -EBADF; /* no terminals in a jail */
}
