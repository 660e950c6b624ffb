/*
 * tar.c - an image's members indexed into the file tree (fs.c).
 *
 * The tar is read through its channel at start, header by header (ustar with
 * its prefix field, GNU long names and links, pax `path`, `linkpath` and
 * `size`; global pax headers are skipped); each member becomes a node under
 * the mount point, a file remembering where its bytes are in the image. A
 * later member of the same name replaces an earlier one, as `tar -x` would.
 * Hard links share their target's bytes; symbolic links keep their target
 * text (fs.c follows it inside the tree). A truncated archive keeps what was
 * read before the cut.
 *
 * An image whose first member is `.zrt-index` (pack-image writes one) lists
 * every member in it, so the index is read in a few large reads instead of
 * one read per member header (thousands for python.tar). Its records are
 *     "zrt-index 1 END\n" then per member
 *     "T OFFSET SIZE MODE MTIME PATH\0LINK\0"
 * (T is 0, 5 or 2; hard links are listed as files with their target's bytes;
 * numbers are fixed-width decimal, MODE octal). END is where the archive's
 * zero blocks start: a tar appended to since it was packed has a member
 * header there, and is then scanned instead. The index only tells the guest
 * where its own image's bytes are: a wrong one misleads no one but the guest.
 */
#include <string.h>
#include <errno.h>
#include "zrt.h"

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

/*
 * Adds the member `path` (of tar type `type`) under `mount`. `link` is the
 * link target, or NULL to take it from the 100-byte header field `field`.
 */
static void put_member(int c, const char *mount, const char *path, char type, uint32_t mode, int64_t mtime,
                       int64_t data, int64_t size, const char *link, const char *field)
{
    size_t ml = strlen(mount), pl = strlen(path);
    if (ml + pl + 2 >= sizeof full || !pl)
        return;
    memcpy(full, mount, ml);
    full[ml] = '/';
    memcpy(full + ml + 1, path, pl + 1);
    int kind = type == '5' ? ZRT_DIR : type == '2' ? ZRT_LINK : ZRT_FILE;
    if (!(type == '0' || type == '\0' || type == '7' || type == '5' || type == '2' || type == '1'))
        return;
    long i = zrt_put(full, ml + 1 + pl, kind, mode);
    if (i < 0)
        return;
    struct zrt_node *nd = zrt_node((uint32_t)i);
    nd->mtime = mtime;
    const char *target = link;
    char lk[101];
    if (!target) {
        size_t k = 0;
        for (; k < 100 && field[k]; k++)
            lk[k] = field[k];
        lk[k] = 0;
        target = lk;
    }
    if (type == '2') {
        nd->data = (char *)zrt_keep_name(target, strlen(target));
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
            if (zrt_lookup(tp, 1, &t) == 0 && zrt_node(t)->kind == ZRT_FILE) {
                const struct zrt_node *from = zrt_node(t);
                nd->kind = ZRT_FILE;
                nd->in_tar = from->in_tar;
                nd->chan = from->chan;
                nd->tar_off = from->tar_off;
                nd->size = from->size;
            }
        }
    } else if (kind == ZRT_FILE) {
        nd->in_tar = 1;
        nd->chan = c;
        nd->tar_off = data;
        nd->size = size;
    }
}

/* A fixed-width decimal (or octal) field of `n` digits and the space after it. */
static int64_t fixed(const char *p, size_t n, int base)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > (base == 8 ? '7' : '9'))
            return -1;
        v = v * base + (p[i] - '0');
    }
    return p[n] == ' ' ? v : -1;
}

#define INDEX_NAME ".zrt-index"
#define INDEX_HEAD 24 /* "zrt-index 1 " and 12 digits: the "\n" follows */
#define RECORD_HEAD 49 /* "T " + 12 + " " + 12 + " " + 7 + " " + 12 + " " */

/*
 * Reads the index at `data` (`size` bytes) of the image on channel `c` into
 * the tree under `mount`: 1 if it was used, 0 if the image must be scanned
 * instead (no nodes were added then).
 */
static int read_index(int c, const char *mount, int64_t data, int64_t size)
{
    const char *p = size > INDEX_HEAD ? image_bytes(c, data, INDEX_HEAD + 1) : NULL;
    if (!p || memcmp(p, "zrt-index 1 ", 12) || p[INDEX_HEAD] != '\n')
        return 0;
    char digits[13];
    memcpy(digits, p + 12, 12);
    digits[12] = ' ';
    int64_t end = fixed(digits, 12, 10);
    const char *tail = end > 0 ? image_bytes(c, end, 512) : NULL;
    if (!tail || tail[0])
        return 0; /* appended to since it was packed: scan it */
    int64_t at = data + INDEX_HEAD + 1, stop = data + size;
    while (at < stop) {
        int64_t want = stop - at < (int64_t)sizeof window ? stop - at : (int64_t)sizeof window;
        const char *b = image_bytes(c, at, (size_t)want);
        if (!b)
            return 1;
        size_t used = 0;
        for (;;) {
            const char *r = b + used;
            size_t left = (size_t)want - used;
            if (left < RECORD_HEAD + 2)
                break;
            const char *path = r + RECORD_HEAD;
            const char *path_end = memchr(path, 0, left - RECORD_HEAD);
            const char *link_end = path_end ? memchr(path_end + 1, 0, (size_t)(b + want - path_end - 1)) : NULL;
            if (!link_end)
                break;
            int64_t off = fixed(r + 2, 12, 10), len = fixed(r + 15, 12, 10);
            int64_t mode = fixed(r + 28, 7, 8), mtime = fixed(r + 36, 12, 10);
            if (r[1] != ' ' || off < 0 || len < 0 || mode < 0 || mtime < 0)
                return 1; /* a damaged index: what was read stays, as with a truncated tar */
            put_member(c, mount, path, r[0], (uint32_t)mode, mtime, off, len, path_end + 1, NULL);
            used = (size_t)(link_end + 1 - b);
        }
        if (!used)
            return 1; /* a record longer than the window */
        at += (int64_t)used;
    }
    return 1;
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
        put_member(c, mount, path, type, (uint32_t)octal(h + 100, 8), octal(h + 136, 12), data, size,
                   long_link[0] ? long_link : NULL, h + 157);
        if (off == 0 && (type == '0' || type == '\0') && !strcmp(path, INDEX_NAME) && read_index(c, mount, data, size))
            return 0;
        long_path[0] = long_link[0] = 0;
        pax_size = -1;
        off = next;
    }
}

