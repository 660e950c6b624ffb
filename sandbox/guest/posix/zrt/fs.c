/*
 * fs.c - the guest's file tree.
 *
 * One table of nodes (index 0 is the root), found by (parent, name) in a hash
 * table, grown from the heap through mem.c. What is in it:
 *   - /dev/<alias> for every channel (kind ZRT_CHAN; /dev/in/... makes /dev/in);
 *   - every entry of each tar image named in the fstab (misc.c), under its
 *     mount point (tar.c indexes it), read-only in place: a file's bytes stay
 *     in the image and are read through the image's channel at their offset;
 *   - the overlay: files and directories the guest creates, and image files
 *     it writes to (copied into memory on the first write). Nothing written
 *     ever reaches the image or the host: it lives and dies with the guest.
 * Paths are resolved one component at a time from the root or the working
 * directory; `..` stops at the root; symbolic links from images are
 * followed (at most 16) within this tree only, so no path can name a host
 * file: the tree is all there is.
 */
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include "zrt.h"

#define MAX_NODES (1U << 22)
#define MAX_LINKS 16

static struct zrt_node *nodes;
static uint32_t count, cap;
static uint32_t *buckets; /* node index + 1 */
static uint32_t nbuckets;
static uint32_t cwd;
static char *arena;
static size_t arena_left;

struct zrt_node *zrt_node(uint32_t i) { return i < count ? &nodes[i] : NULL; }
uint32_t zrt_node_count(void) { return count; }

static uint32_t hash(uint32_t parent, const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ parent;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h;
}

const char *zrt_keep_name(const char *name, size_t len)
{
    if (len + 1 > arena_left) {
        size_t chunk = len + 1 > 65536 ? (len + 1 + ZRT_PAGE) & ~(ZRT_PAGE - 1) : 65536;
        arena = zrt_pages(chunk);
        if (!arena)
            return NULL;
        arena_left = chunk;
    }
    char *p = arena;
    memcpy(p, name, len);
    p[len] = 0;
    arena += len + 1;
    arena_left -= len + 1;
    return p;
}

static void link_in(uint32_t i)
{
    uint32_t b = hash(nodes[i].parent, nodes[i].name, nodes[i].name_len) & (nbuckets - 1);
    nodes[i].hnext = buckets[b];
    buckets[b] = i + 1;
}

/* The directory make_dirs last reached, by its path: an image's members come
 * directory by directory, so most members' directories are found without a
 * lookup per component. Any node leaving its place (unlink_out: removal,
 * rename) or a directory replaced by another kind (zrt_put) forgets it;
 * adding nodes changes no directory's path. */
static char last_dir[4096];
static size_t last_dir_len;
static uint32_t last_dir_node;

static void unlink_out(uint32_t i)
{
    last_dir_len = 0;
    uint32_t b = hash(nodes[i].parent, nodes[i].name, nodes[i].name_len) & (nbuckets - 1);
    for (uint32_t *at = &buckets[b]; *at; at = &nodes[*at - 1].hnext)
        if (*at == i + 1) {
            *at = nodes[i].hnext;
            return;
        }
}

/* Room for one more node: doubles the table and rehashes. */
static int grow(void)
{
    if (count < cap)
        return 0;
    if (cap >= MAX_NODES)
        return -ENOSPC;
    /* 4096 to start: an image like python.tar's (about 3,000 members) fits
     * without copying and rehashing the table; untouched pages cost nothing. */
    uint32_t ncap = cap ? cap * 2 : 4096;
    struct zrt_node *n = zrt_pages(ncap * sizeof *n);
    uint32_t *b = zrt_pages(ncap * sizeof *b);
    if (!n || !b)
        return -ENOMEM;
    if (nodes) {
        memcpy(n, nodes, count * sizeof *n);
        zrt_pages_free(nodes, cap * sizeof *n);
        zrt_pages_free(buckets, nbuckets * sizeof *b);
    }
    nodes = n;
    buckets = b;
    cap = nbuckets = ncap;
    for (uint32_t i = 1; i < count; i++)
        if (nodes[i].kind != ZRT_FREE)
            link_in(i);
    return 0;
}

static long child(uint32_t parent, const char *name, size_t len)
{
    uint32_t b = hash(parent, name, len) & (nbuckets - 1);
    for (uint32_t at = buckets[b]; at; at = nodes[at - 1].hnext) {
        struct zrt_node *n = &nodes[at - 1];
        if (n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0)
            return at - 1;
    }
    return -ENOENT;
}

static long add(uint32_t parent, const char *name, size_t len, int kind, uint32_t mode)
{
    int r = grow();
    if (r)
        return r;
    const char *kept = zrt_keep_name(name, len);
    if (!kept)
        return -ENOMEM;
    uint32_t i = count++;
    nodes[i] = (struct zrt_node){ .name = kept, .name_len = (uint32_t)len, .parent = parent,
                                  .kind = (uint8_t)kind, .mode = mode & 07777, .chan = -1 };
    link_in(i);
    return i;
}

/*
 * Resolves `path` from `start`. With `name`, stops before the last
 * component and returns the parent directory, the last name in name and len.
 */
static long walk(uint32_t start, const char *path, int follow, int depth, const char **name, size_t *len)
{
    uint32_t at = path[0] == '/' ? 0 : start;
    const char *p = path;
    if (depth > MAX_LINKS)
        return -ELOOP;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            return name ? -EISDIR : (long)at;
        const char *end = p;
        while (*end && *end != '/')
            end++;
        size_t n = (size_t)(end - p);
        const char *rest = end;
        while (*rest == '/')
            rest++;
        int last = !*rest;
        if (nodes[at].kind != ZRT_DIR)
            return -ENOTDIR;
        if (last && name) {
            if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                return -EISDIR;
            *name = p;
            *len = n;
            return at;
        }
        long next;
        if (n == 1 && p[0] == '.')
            next = at;
        else if (n == 2 && p[0] == '.' && p[1] == '.')
            next = nodes[at].parent;
        else
            next = child(at, p, n);
        if (next < 0)
            return next;
        if (nodes[next].kind == ZRT_LINK && (!last || follow)) {
            long target = walk(at, nodes[next].data, 1, depth + 1, NULL, NULL);
            if (target < 0)
                return target;
            next = target;
        }
        at = (uint32_t)next;
        p = end;
        if (last)
            return at;
    }
}

long zrt_lookup(const char *path, int follow, uint32_t *out)
{
    if (!*path)
        return -ENOENT;
    long r = walk(cwd, path, follow, 0, NULL, NULL);
    if (r >= 0)
        *out = (uint32_t)r;
    return r < 0 ? r : 0;
}

long zrt_create(const char *path, int kind, uint32_t mode, uint32_t *out)
{
    const char *name;
    size_t len;
    if (!*path)
        return -ENOENT;
    long dir = walk(cwd, path, 1, 0, &name, &len);
    if (dir < 0)
        return dir == -EISDIR ? -EEXIST : dir;
    if (len > 255)
        return -ENAMETOOLONG;
    long existing = child((uint32_t)dir, name, len);
    if (existing >= 0) {
        *out = (uint32_t)existing;
        return -EEXIST;
    }
    long r = add((uint32_t)dir, name, len, kind, mode);
    if (r < 0)
        return r;
    nodes[r].mtime = zrt_now_ns() / 1000000000;
    *out = (uint32_t)r;
    return 0;
}

/* mkdir -p for image entries and channel aliases; the directory's index. */
static long make_dirs(const char *path, size_t len)
{
    uint32_t at = 0;
    size_t i = 0;
    /* Start from the remembered directory when it is this path or one above it. */
    if (last_dir_len && last_dir_len <= len &&
        (last_dir_len == len || path[last_dir_len] == '/' || last_dir[last_dir_len - 1] == '/') &&
        nodes[last_dir_node].kind == ZRT_DIR && memcmp(path, last_dir, last_dir_len) == 0) {
        at = last_dir_node;
        i = last_dir_len;
    }
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        size_t s = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == s)
            break;
        long c = child(at, path + s, i - s);
        if (c < 0)
            c = add(at, path + s, i - s, ZRT_DIR, 0755);
        if (c < 0)
            return c;
        if (nodes[c].kind != ZRT_DIR)
            return -ENOTDIR;
        at = (uint32_t)c;
    }
    if (len < sizeof last_dir) {
        memcpy(last_dir, path, len);
        last_dir_len = len;
        last_dir_node = at;
    }
    return at;
}

/* Adds (or replaces) the entry at `path`, making its directories. */
long zrt_put(const char *path, size_t len, int kind, uint32_t mode)
{
    while (len && path[len - 1] == '/')
        len--;
    size_t slash = len;
    while (slash && path[slash - 1] != '/')
        slash--;
    if (slash == len)
        return kind == ZRT_DIR ? make_dirs(path, len) : -EINVAL; /* the mount point itself */
    long dir = make_dirs(path, slash);
    if (dir < 0)
        return dir;
    long c = child((uint32_t)dir, path + slash, len - slash);
    if (c >= 0) {
        if (kind == ZRT_DIR && nodes[c].kind == ZRT_DIR)
            return c;
        /* A later tar member wins, as with tar -x. Written only if changed:
         * in a daemon's copy an unchanged node's page stays shared. */
        if (nodes[c].kind != (uint8_t)kind) {
            if (nodes[c].kind == ZRT_DIR)
                last_dir_len = 0; /* a directory replaced: paths through it change */
            nodes[c].kind = (uint8_t)kind;
        }
        if (nodes[c].mode != (mode & 07777))
            nodes[c].mode = mode & 07777;
        return c;
    }
    return add((uint32_t)dir, path + slash, len - slash, kind, mode);
}

long zrt_remove(const char *path, int dir)
{
    uint32_t i;
    long r = zrt_lookup(path, 0, &i);
    if (r < 0)
        return r;
    if (i == 0)
        return -EBUSY;
    if (dir && nodes[i].kind != ZRT_DIR)
        return -ENOTDIR;
    if (!dir && nodes[i].kind == ZRT_DIR)
        return -EISDIR;
    if (nodes[i].kind == ZRT_CHAN)
        return -EPERM;
    if (dir)
        for (uint32_t j = 1; j < count; j++)
            if (nodes[j].parent == i && nodes[j].kind != ZRT_FREE && j != i)
                return -ENOTEMPTY;
    for (uint32_t c = cwd; dir; c = nodes[c].parent) {
        if (c == i)
            return -EBUSY;
        if (c == 0)
            break;
    }
    unlink_out(i);
    if (nodes[i].data && nodes[i].cap)
        zrt_pages_free(nodes[i].data, (size_t)nodes[i].cap);
    nodes[i].kind = ZRT_FREE;
    nodes[i].data = NULL;
    nodes[i].cap = 0;
    return 0;
}

long zrt_rename(const char *from, const char *to)
{
    uint32_t i;
    long r = zrt_lookup(from, 0, &i);
    if (r < 0)
        return r;
    if (i == 0 || nodes[i].kind == ZRT_CHAN)
        return -EBUSY;
    const char *name;
    size_t len;
    long dir = walk(cwd, to, 1, 0, &name, &len);
    if (dir < 0)
        return dir;
    for (uint32_t c = (uint32_t)dir;; c = nodes[c].parent) {
        if (c == i)
            return -EINVAL; /* into itself */
        if (c == 0)
            break;
    }
    long old = child((uint32_t)dir, name, len);
    if (old == i)
        return 0;
    if (old >= 0) {
        if (nodes[old].kind == ZRT_DIR && nodes[i].kind != ZRT_DIR)
            return -EISDIR;
        if (nodes[old].kind != ZRT_DIR && nodes[i].kind == ZRT_DIR)
            return -ENOTDIR;
        char path[4096];
        if (zrt_node_path((uint32_t)old, path, sizeof path) < 0)
            return -ENAMETOOLONG;
        r = zrt_remove(path, nodes[old].kind == ZRT_DIR);
        if (r < 0)
            return r;
    }
    const char *kept = zrt_keep_name(name, len);
    if (!kept)
        return -ENOMEM;
    unlink_out(i);
    nodes[i].parent = (uint32_t)dir;
    nodes[i].name = kept;
    nodes[i].name_len = (uint32_t)len;
    link_in(i);
    return 0;
}

long zrt_node_path(uint32_t i, char *buf, size_t size)
{
    size_t at = size;
    if (!size)
        return -ERANGE;
    buf[--at] = 0;
    for (; i != 0; i = nodes[i].parent) {
        size_t n = nodes[i].name_len;
        if (at < n + 1)
            return -ERANGE;
        at -= n;
        memcpy(buf + at, nodes[i].name, n);
        buf[--at] = '/';
    }
    if (at == size - 1) {
        if (at < 1)
            return -ERANGE;
        buf[--at] = '/';
    }
    memmove(buf, buf + at, size - at);
    return (long)(size - at);
}

long zrt_chdir(const char *path)
{
    uint32_t i;
    long r = zrt_lookup(path, 1, &i);
    if (r < 0)
        return r;
    if (nodes[i].kind != ZRT_DIR)
        return -ENOTDIR;
    cwd = i;
    return 0;
}

long zrt_getcwd(char *buf, size_t size)
{
    return zrt_node_path(cwd, buf, size);
}

static int chan_random_get(int c) { return MANIFEST->channels[c].type & 1; }

void zrt_stat_node(uint32_t i, struct stat *st)
{
    struct zrt_node *n = &nodes[i];
    memset(st, 0, sizeof *st);
    st->st_dev = 1;
    st->st_ino = i + 1;
    st->st_nlink = n->kind == ZRT_DIR ? 2 : 1;
    st->st_blksize = 4096;
    st->st_size = n->size;
    st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = n->mtime;
    switch (n->kind) {
    case ZRT_DIR:
        st->st_mode = S_IFDIR | n->mode;
        st->st_size = 4096;
        break;
    case ZRT_LINK:
        st->st_mode = S_IFLNK | 0777;
        break;
    case ZRT_CHAN:
        /* A random channel is a file of its size; a sequential one a stream. */
        if (chan_random_get(n->chan)) {
            st->st_mode = S_IFREG | 0600;
            st->st_size = MANIFEST->channels[n->chan].size;
        } else {
            st->st_mode = S_IFCHR | 0600;
        }
        break;
    default:
        st->st_mode = S_IFREG | n->mode;
    }
    st->st_blocks = (st->st_size + 511) / 512;
}

long zrt_node_pread(uint32_t i, void *buf, size_t n, int64_t off)
{
    struct zrt_node *f = &nodes[i];
    if (off >= f->size)
        return 0;
    if ((int64_t)n > f->size - off)
        n = (size_t)(f->size - off);
    if (!f->in_tar) {
        memcpy(buf, f->data + off, n);
        return (long)n;
    }
    size_t done = 0;
    while (done < n) {
        int64_t r = zvm_pread(f->chan, (char *)buf + done, (int64_t)(n - done), f->tar_off + off + (int64_t)done);
        if (r < 0)
            return done ? (long)done : (long)r;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (long)done;
}

/* Makes room for `need` bytes of overlay data, copying an image file in first. */
static long reserve(uint32_t i, int64_t need)
{
    struct zrt_node *f = &nodes[i];
    if (!f->in_tar && need <= f->cap)
        return 0;
    int64_t want = ZRT_PAGE;
    while (want < need || want < f->size)
        want *= 2;
    if (f->in_tar) {
        char *d = zrt_pages((size_t)want);
        if (!d)
            return -ENOSPC;
        long r = zrt_node_pread(i, d, (size_t)f->size, 0);
        if (r < 0) {
            zrt_pages_free(d, (size_t)want);
            return r;
        }
        f->data = d;
        f->cap = want;
        f->in_tar = 0;
        return 0;
    }
    long d = f->cap ? zrt_mremap((uintptr_t)f->data, (size_t)f->cap, (size_t)want, MREMAP_MAYMOVE)
                    : (long)zrt_pages((size_t)want);
    if (d <= 0)
        return -ENOSPC;
    f->data = (char *)d;
    f->cap = want;
    return 0;
}

long zrt_node_pwrite(uint32_t i, const void *buf, size_t n, int64_t off)
{
    if (off < 0 || (int64_t)n < 0 || off > INT64_MAX - (int64_t)n)
        return -EINVAL;
    long r = reserve(i, off + (int64_t)n);
    if (r < 0)
        return r;
    struct zrt_node *f = &nodes[i];
    if (off > f->size)
        memset(f->data + f->size, 0, (size_t)(off - f->size));
    memcpy(f->data + off, buf, n);
    if (off + (int64_t)n > f->size)
        f->size = off + (int64_t)n;
    f->mtime = zrt_now_ns() / 1000000000;
    return (long)n;
}

long zrt_node_truncate(uint32_t i, int64_t size)
{
    if (size < 0)
        return -EINVAL;
    long r = reserve(i, size);
    if (r < 0)
        return r;
    struct zrt_node *f = &nodes[i];
    if (size > f->size)
        memset(f->data + f->size, 0, (size_t)(size - f->size));
    f->size = size;
    return 0;
}

void zrt_fs_init(void)
{
    grow();
    add(0, "", 0, ZRT_DIR, 0755); /* the root: its own parent */
    unlink_out(0);
    zrt_put("/dev", 4, ZRT_DIR, 0755);
    zrt_put("/tmp", 4, ZRT_DIR, 01777);
    for (int64_t c = 0; c < MANIFEST->channels_count; c++) {
        const char *alias = MANIFEST->channels[c].name;
        if (!alias || strncmp(alias, "/dev/", 5))
            continue;
        long i = zrt_put(alias, strlen(alias), ZRT_CHAN, 0600);
        if (i >= 0) {
            nodes[i].kind = ZRT_CHAN;
            nodes[i].chan = (int32_t)c;
        }
    }
}

/* fork(): zvm_fork (zvm.h). In a daemon (`Job`) the call never returns;
 * each job's copy of the guest returns 0 here with the daemon's memory and
 * its own channels, so the tree is rewired by alias: a channel node or an
 * image's file keeps its alias and gets the job's channel of that name (-1,
 * so I/O fails, when the job has none), and every job channel gets its
 * /dev node. Without `Job` the call answers -ENOSYS. */
long zrt_fork(void)
{
    int64_t n = MANIFEST->channels_count;
    size_t size = (size_t)n * (sizeof(const char *) + sizeof(int32_t));
    const char **was = zrt_pages(size ? size : 1);
    if (!was)
        return -ENOMEM;
    int32_t *to = (int32_t *)(was + n);
    for (int64_t c = 0; c < n; c++) {
        const char *alias = MANIFEST->channels[c].name;
        was[c] = alias ? zrt_keep_name(alias, strlen(alias)) : "";
    }
    long r = zvm_fork();
    if (r == 0) {
        /* Each of the daemon's channels is looked up once, and a node is
         * written only if its channel changes: the tree is the daemon's
         * memory, and a write copies the node's page (an image holds
         * thousands of nodes, all on the image's channel, which a job
         * usually has under the same number). */
        for (int64_t c = 0; c < n; c++)
            to[c] = zrt_channel(was[c]);
        for (uint32_t i = 0; i < count; i++) {
            int32_t c = nodes[i].chan;
            if ((nodes[i].kind == ZRT_CHAN || nodes[i].in_tar) && c >= 0 && c < n && to[c] != c)
                nodes[i].chan = to[c];
        }
        for (int64_t c = 0; c < MANIFEST->channels_count; c++) {
            const char *alias = MANIFEST->channels[c].name;
            if (!alias || strncmp(alias, "/dev/", 5))
                continue;
            long i = zrt_put(alias, strlen(alias), ZRT_CHAN, 0600);
            if (i >= 0 && nodes[i].chan != (int32_t)c)
                nodes[i].chan = (int32_t)c;
        }
    }
    zrt_pages_free(was, size ? size : 1);
    return r;
}
