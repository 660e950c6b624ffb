/*
 * fs.c - the guest's file tree.
 *
 * One table of nodes (index 0 is the root), found by (parent, name) in a hash
 * table, grown from the heap through mem.c. What is in it:
 *   - /dev/<alias> for every channel (kind ZRT_CHAN; /dev/in/... makes /dev/in);
 *   - every entry of each tar image named in the fstab (nvram.c), under its
 *     mount point, read-only in place: a file's bytes stay in the image and
 *     are read through the image's channel at their offset;
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

static const char *keep_name(const char *name, size_t len)
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

static void unlink_out(uint32_t i)
{
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
    uint32_t ncap = cap ? cap * 2 : 1024;
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
    const char *kept = keep_name(name, len);
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
    return at;
}

/* Adds (or replaces) the entry at `path`, making its directories. */
static long put(const char *path, size_t len, int kind, uint32_t mode)
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
        nodes[c].kind = (uint8_t)kind; /* a later tar member wins, as with tar -x */
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
    const char *kept = keep_name(name, len);
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

/* ---- images ---- */

static char window[65536];
static int window_chan = -1;
static int64_t window_off, window_len;

/*
 * `len` bytes of channel `c` at `off` (len <= sizeof window), or NULL. A miss
 * reads 4 KiB (or len): the headers of a run of small members come together,
 * little to waste when the next header lies past a large member's data.
 */
static const char *image_bytes(int c, int64_t off, size_t len)
{
    if (c != window_chan || off < window_off || off + (int64_t)len > window_off + window_len) {
        int64_t want = len > 4096 ? (int64_t)len : 4096;
        window_chan = c;
        window_off = off;
        window_len = 0;
        while (window_len < want) {
            int64_t r = zvm_pread(c, window + window_len, want - window_len, off + window_len);
            if (r <= 0)
                break;
            window_len += r;
        }
        if (window_len < (int64_t)len)
            return NULL;
    }
    return window + (off - window_off);
}

static int64_t octal(const char *p, size_t n)
{
    int64_t v = 0;
    if ((unsigned char)p[0] & 0x80) { /* GNU base-256 */
        for (size_t i = 1; i < n; i++)
            v = (v << 8) | (unsigned char)p[i];
        return v;
    }
    for (size_t i = 0; i < n && p[i]; i++)
        if (p[i] >= '0' && p[i] <= '7')
            v = v * 8 + (p[i] - '0');
    return v;
}

/* pax "len key=value\n" records: path, linkpath, size. */
static void pax(const char *p, size_t n, char *path, char *link, int64_t *size)
{
    size_t i = 0;
    while (i < n) {
        size_t len = 0, j = i;
        while (j < n && p[j] >= '0' && p[j] <= '9')
            len = len * 10 + (size_t)(p[j++] - '0');
        if (!len || i + len > n)
            return;
        const char *kv = p + j + 1, *end = p + i + len - 1;
        const char *eq = kv;
        while (eq < end && *eq != '=')
            eq++;
        size_t vl = (size_t)(end - eq - 1);
        if (eq - kv == 4 && !memcmp(kv, "path", 4) && vl < 4096) {
            memcpy(path, eq + 1, vl);
            path[vl] = 0;
        } else if (eq - kv == 8 && !memcmp(kv, "linkpath", 8) && vl < 4096) {
            memcpy(link, eq + 1, vl);
            link[vl] = 0;
        } else if (eq - kv == 4 && !memcmp(kv, "size", 4)) {
            *size = 0;
            for (const char *q = eq + 1; q < end; q++)
                *size = *size * 10 + (*q - '0');
        }
        i += len;
    }
}

static char long_path[4096], long_link[4096], full[8192];

/* Copies at most `cap`-1 bytes of the member data at `off` into `out`. */
static void member_string(int c, int64_t off, int64_t size, char *out, size_t cap)
{
    size_t n = size < (int64_t)cap - 1 ? (size_t)size : cap - 1;
    const char *p = image_bytes(c, off, n);
    if (!p)
        n = 0;
    else
        memcpy(out, p, n);
    out[n] = 0;
}

/* Indexes the tar on channel `c` under `mount`; 0 or -errno. */
long zrt_mount_tar(int c, const char *mount)
{
    int64_t off = 0;
    long_path[0] = long_link[0] = 0;
    int64_t pax_size = -1;
    for (;;) {
        const char *h = image_bytes(c, off, 512);
        if (!h || !h[0])
            return 0; /* end of archive (or a truncated one: what was read stays) */
        char type = h[156];
        int64_t size = pax_size >= 0 ? pax_size : octal(h + 124, 12);
        int64_t data = off + 512;
        int64_t next = data + ((size + 511) & ~511LL);
        if (type == 'L' || type == 'K') {
            member_string(c, data, size, type == 'L' ? long_path : long_link, 4096);
            off = next;
            continue;
        }
        if (type == 'x') {
            const char *p = size <= (int64_t)sizeof window ? image_bytes(c, data, (size_t)size) : NULL;
            if (p)
                pax(p, (size_t)size, long_path, long_link, &pax_size);
            off = next;
            continue;
        }
        if (type == 'g') {
            off = next;
            continue;
        }
        char name[257];
        const char *path = long_path;
        if (!long_path[0]) {
            size_t n = 0;
            if (!memcmp(h + 257, "ustar", 5) && h[345]) {
                while (n < 155 && h[345 + n])
                    name[n] = h[345 + n], n++;
                name[n++] = '/';
            }
            for (size_t k = 0; k < 100 && h[k]; k++)
                name[n++] = h[k];
            name[n] = 0;
            path = name;
        }
        while (path[0] == '.' && path[1] == '/')
            path += 2;
        while (path[0] == '/')
            path++;
        size_t ml = strlen(mount), pl = strlen(path);
        if (ml + pl + 2 < sizeof full && pl) {
            memcpy(full, mount, ml);
            full[ml] = '/';
            memcpy(full + ml + 1, path, pl + 1);
            int kind = type == '5' ? ZRT_DIR : type == '2' ? ZRT_LINK : ZRT_FILE;
            if (type == '0' || type == '\0' || type == '7' || type == '5' || type == '2' || type == '1') {
                long i = put(full, ml + 1 + pl, kind, (uint32_t)octal(h + 100, 8));
                if (i >= 0) {
                    struct zrt_node *nd = &nodes[i];
                    nd->mtime = octal(h + 136, 12);
                    const char *target = long_link[0] ? long_link : NULL;
                    char lk[101];
                    if (!target) {
                        size_t k = 0;
                        for (; k < 100 && h[157 + k]; k++)
                            lk[k] = h[157 + k];
                        lk[k] = 0;
                        target = lk;
                    }
                    if (type == '2') {
                        nd->data = (char *)keep_name(target, strlen(target));
                    } else if (type == '1') {
                        /* A hard link: the same bytes as the member it names. */
                        uint32_t t;
                        char tp[8192];
                        size_t tl = strlen(target);
                        while (target[0] == '.' && target[1] == '/')
                            target += 2, tl -= 2;
                        if (ml + tl + 2 < sizeof tp) {
                            memcpy(tp, mount, ml);
                            tp[ml] = '/';
                            memcpy(tp + ml + 1, target, tl + 1);
                            if (zrt_lookup(tp, 1, &t) == 0 && nodes[t].kind == ZRT_FILE) {
                                nodes[i].kind = ZRT_FILE;
                                nodes[i].in_tar = nodes[t].in_tar;
                                nodes[i].chan = nodes[t].chan;
                                nodes[i].tar_off = nodes[t].tar_off;
                                nodes[i].size = nodes[t].size;
                            }
                        }
                    } else if (kind == ZRT_FILE) {
                        nd->in_tar = 1;
                        nd->chan = c;
                        nd->tar_off = data;
                        nd->size = size;
                    }
                }
            }
        }
        long_path[0] = long_link[0] = 0;
        pax_size = -1;
        off = next;
    }
}

void zrt_fs_init(void)
{
    grow();
    add(0, "", 0, ZRT_DIR, 0755); /* the root: its own parent */
    unlink_out(0);
    put("/dev", 4, ZRT_DIR, 0755);
    put("/tmp", 4, ZRT_DIR, 01777);
    for (int64_t c = 0; c < MANIFEST->channels_count; c++) {
        const char *alias = MANIFEST->channels[c].name;
        if (!alias || strncmp(alias, "/dev/", 5))
            continue;
        long i = put(alias, strlen(alias), ZRT_CHAN, 0600);
        if (i >= 0) {
            nodes[i].kind = ZRT_CHAN;
            nodes[i].chan = (int32_t)c;
        }
    }
}
