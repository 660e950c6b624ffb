/*
 * words.h - the word table map.c and reduce.c share: what a word is, its hash, and a
 * hash table of (word, count) kept in the guest's preallocated heap.
 *
 * A word is what `tr -s ' ' '\n'` makes a line of: a maximal run of bytes other than
 * space and newline (tabs, NULs, carriage returns and bytes >= 0x80 are word bytes).
 *
 * The table: open addressing with linear probing, filled at most half, so a probe is
 * short and, once reading is done, the free half of the slot array is the scratch space
 * reduce.c's merge sort needs. It takes one region of the heap (all that is left): the
 * words' bytes (the store) grow up from its start, the slot array sits at its end and
 * doubles, rehashed, when half full, as long as the space between them allows. So a
 * small job touches little memory even under zvsh's default 4 GiB, and a large one can
 * use all of it. A slot holds its word's offset and length in the store, its count, and
 * its key, the word's first 8 bytes: a word of up to 8 bytes (most words of a text) is
 * found without reading the store, and reduce.c sorts on the keys. A word that runs past
 * the end of a read is collected at the store's free end (the "part") and committed in
 * place when it turns out to be new. Nothing is freed one by one: map.c empties the
 * whole table when it is full, reduce.c fails.
 *
 * The hash takes the word 8 bytes at a time (little-endian, the last piece zero-padded),
 * each piece xored in and multiplied, then the length, finished with MurmurHash3's
 * fmix64 so that both halves are well mixed: the low 32 bits pick the slot, the high 32
 * bits pick the reducer (map.c). A stable function of the bytes alone: every map sends
 * a word to the same reducer. map.c computes it while finding the word's end, on the
 * same 8-byte loads (word_hash is the reference it must equal).
 */
#ifndef WORDS_H
#define WORDS_H

#include <zvm.h>

#define HASH_SEED 0xcbf29ce484222325ULL
#define HASH_MUL 0x9e3779b97f4a7c15ULL

/* 8 bytes at p, little-endian, from any alignment. */
static inline uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    __builtin_memcpy(&x, p, 8);
    return x;
}

/* The n (< 8) bytes at p as a little-endian chunk, zero-padded; reads only those bytes. */
static inline uint64_t partial_chunk(const unsigned char *p, uint64_t n)
{
    uint64_t x = 0;
    while (n-- > 0)
        x = x << 8 | p[n];
    return x;
}

/* One chunk into a hash state. */
static inline uint64_t hash_chunk(uint64_t h, uint64_t chunk)
{
    return (h ^ chunk) * HASH_MUL;
}

/* The finished hash of a word of `len` bytes whose chunks made state h. */
static inline uint64_t hash_finish(uint64_t h, uint64_t len)
{
    h ^= len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The hash of the word w[0..len). */
static inline uint64_t word_hash(const unsigned char *w, uint64_t len)
{
    uint64_t h = HASH_SEED, i = 0;
    for (; i + 8 <= len; i += 8)
        h = hash_chunk(h, load8(w + i));
    if (i < len)
        h = hash_chunk(h, partial_chunk(w + i, len - i));
    return hash_finish(h, len);
}

/* The key of the word w[0..len): its first 8 bytes, big-endian, zero-padded. Keys
 * compare as the words' first 8 bytes do, byte by byte. */
static inline uint64_t word_key(const unsigned char *w, uint64_t len)
{
    return __builtin_bswap64(len >= 8 ? load8(w) : partial_chunk(w, len));
}

static inline int is_separator(unsigned char c)
{
    return c == ' ' || c == '\n';
}

/* A slot; count 0 marks it empty. The key settles most comparisons without reading
 * the store (all of a word of up to 8 bytes), and is reduce.c's sort key. */
struct slot {
    uint64_t key;
    uint64_t count;
    uint32_t off; /* in the store (which is under 4 GiB: so is all of Memory) */
    uint32_t len;
};

struct table {
    unsigned char *store; /* the region's start: committed words, then the part */
    uint64_t store_used;  /* committed words' bytes */
    uint64_t part_len;    /* the unfinished word's bytes, at store + store_used */
    struct slot *slots;   /* nslots slots, ending at `end` */
    uint64_t nslots;
    uint64_t used;     /* slots in use */
    uint64_t max_used; /* nslots / 2 */
    unsigned char *end;
};

/* Takes `size` bytes (rounded up to 8) from the heap, or exits with 2 saying so. */
static inline void *heap_take(const char *who, uint64_t size)
{
    void *p = zvm_sbrk((int64_t)((size + 7) & ~(uint64_t)7));
    if (p == (void *)-1) {
        zvm_puts(2, who);
        zvm_puts(2, ": Memory is too small for the buffers; give the guest more memory\n");
        zvm_exit(2);
    }
    return p;
}

/* All of the heap not taken yet: (where, how many bytes). */
struct region {
    void *mem;
    uint64_t size;
};

static inline struct region heap_rest(void)
{
    uint64_t used = (uint64_t)((char *)zvm_sbrk(0) - (char *)MANIFEST->heap_ptr);
    uint64_t size = (MANIFEST->heap_size - used) & ~(uint64_t)7;
    return (struct region){ zvm_sbrk((int64_t)size), size };
}

/* Free bytes between the store's end and the slot array. */
static inline uint64_t table_room(const struct table *t)
{
    return (uint64_t)((unsigned char *)t->slots - (t->store + t->store_used + t->part_len));
}

/* Lays an empty table over region r (8-byte aligned), with 4096 slots or fewer so
 * they take at most a quarter of it. Returns -1 if r is too small for 16 slots. */
static inline int table_init(struct table *t, struct region r)
{
    uint64_t n = 4096;

    if (r.size > 0xfffffff8ULL) /* offsets are 32-bit (the heap is under 4 GiB anyway) */
        r.size = 0xfffffff8ULL;
    while (n >= 16 && n * sizeof(struct slot) > r.size / 4)
        n /= 2;
    if (n < 16)
        return -1;
    t->store = r.mem;
    t->store_used = t->part_len = 0;
    t->end = (unsigned char *)r.mem + r.size;
    t->slots = (struct slot *)t->end - n;
    t->nslots = n;
    t->max_used = n / 2;
    t->used = 0;
    for (uint64_t i = 0; i < n; i++)
        t->slots[i].count = 0;
    return 0;
}

/* Empties the table; an unfinished word moves to the store's start. */
static inline void table_reset(struct table *t)
{
    for (uint64_t i = 0; i < t->nslots; i++)
        t->slots[i].count = 0;
    t->used = 0;
    if (t->part_len)
        memmove(t->store, t->store + t->store_used, t->part_len);
    t->store_used = 0;
}

static inline uint64_t slot_index(uint64_t h, uint64_t nslots)
{
    return ((h & 0xffffffffULL) * nslots) >> 32;
}

/* Doubles the slot array: rehashes into twice as many slots just below it, then moves
 * those up to the region's end. Returns -1, changing nothing, if there is no room. */
static inline int table_grow(struct table *t)
{
    uint64_t n = t->nslots * 2;
    struct slot *fresh = t->slots - n, *dst = (struct slot *)t->end - n;

    if (n * sizeof(struct slot) > table_room(t))
        return -1;
    for (uint64_t i = 0; i < n; i++)
        fresh[i].count = 0;
    for (uint64_t i = 0; i < t->nslots; i++) {
        if (t->slots[i].count == 0)
            continue;
        uint64_t k = slot_index(word_hash(t->store + t->slots[i].off, t->slots[i].len), n);
        while (fresh[k].count)
            k = k + 1 == n ? 0 : k + 1;
        fresh[k] = t->slots[i];
    }
    /* dst is above fresh and overlaps it: copy from the top down. */
    for (uint64_t i = n; i-- > 0;)
        dst[i] = fresh[i];
    t->slots = dst;
    t->nslots = n;
    t->max_used = n / 2;
    return 0;
}

static inline int same_bytes(const unsigned char *a, const unsigned char *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* The slot holding word w (len bytes, hash h, key k), or the empty slot where it would go. */
static inline struct slot *table_find(struct table *t, const unsigned char *w, uint64_t len, uint64_t h, uint64_t k)
{
    uint64_t i = slot_index(h, t->nslots);
    for (;;) {
        struct slot *s = &t->slots[i];
        if (s->count == 0)
            return s;
        if (s->key == k && s->len == len && (len <= 8 || same_bytes(t->store + s->off + 8, w + 8, len - 8)))
            return s;
        if (++i == t->nslots)
            i = 0;
    }
}

/* Adds `count` to word w (outside the store); copies it in if new, growing the slot
 * array when half full. Returns -1 when a new word does not fit (the slots cannot grow,
 * or the store is full); the counts are unchanged then. */
static inline int table_add(struct table *t, const unsigned char *w, uint64_t len, uint64_t h, uint64_t k,
                            uint64_t count)
{
    struct slot *s = table_find(t, w, len, h, k);
    if (s->count) {
        s->count += count;
        return 0;
    }
    if (t->used >= t->max_used) {
        if (table_grow(t) != 0)
            return -1;
        s = table_find(t, w, len, h, k);
    }
    if (len > table_room(t))
        return -1;
    memcpy(t->store + t->store_used, w, len);
    *s = (struct slot){ .key = k, .count = count, .off = (uint32_t)t->store_used, .len = (uint32_t)len };
    t->store_used += len;
    t->used++;
    return 0;
}

/* Appends n bytes to the unfinished word. Returns -1, changing nothing, if there is no room. */
static inline int table_part_append(struct table *t, const unsigned char *b, uint64_t n)
{
    if (n > table_room(t))
        return -1;
    memcpy(t->store + t->store_used + t->part_len, b, n);
    t->part_len += n;
    return 0;
}

/* Adds `count` to the unfinished word, now finished; it stays where it is if new.
 * Returns -1 when it is new and the slots cannot grow; the counts are unchanged then. */
static inline int table_add_part(struct table *t, uint64_t count)
{
    const unsigned char *w = t->store + t->store_used;
    uint64_t h = word_hash(w, t->part_len), k = word_key(w, t->part_len);
    struct slot *s = table_find(t, w, t->part_len, h, k);
    if (s->count) {
        s->count += count;
        t->part_len = 0;
        return 0;
    }
    if (t->used >= t->max_used) {
        if (table_grow(t) != 0)
            return -1;
        s = table_find(t, w, t->part_len, h, k);
    }
    *s = (struct slot){ .key = k, .count = count, .off = (uint32_t)t->store_used, .len = (uint32_t)t->part_len };
    t->store_used += t->part_len;
    t->part_len = 0;
    t->used++;
    return 0;
}

/* Says "WHO: WHAT" and a newline on /dev/stderr. */
static inline void say(const char *who, const char *what)
{
    zvm_puts(2, who);
    zvm_puts(2, ": ");
    zvm_puts(2, what);
    zvm_puts(2, "\n");
}

/* Formats v in decimal, right-aligned in at least `width` columns, at the end of
 * buf[0..24); returns where it starts. */
static inline char *format_count(char buf[24], uint64_t v, int width)
{
    char *p = buf + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (buf + 24 - p < width)
        *--p = ' ';
    return p;
}

/* A buffered sequential output channel: few, large writes. */
struct out {
    int desc;
    const char *name;
    char *buf;
    uint64_t size, used;
};

/* Writes out what is buffered. 0, or the failed call's negative result (-EIO if the
 * channel took fewer bytes without an error). */
static inline int64_t out_flush(struct out *o)
{
    int64_t n = zvm_write_all(o->desc, o->buf, (int64_t)o->used);
    if (n != (int64_t)o->used)
        return n < 0 ? n : -5;
    o->used = 0;
    return 0;
}

/* Writes a piece straight through, after what is buffered. 0 or a negative result. */
static inline int64_t out_direct(struct out *o, const void *b, uint64_t n)
{
    int64_t r = out_flush(o);
    if (r < 0)
        return r;
    r = zvm_write_all(o->desc, b, (int64_t)n);
    return r == (int64_t)n ? 0 : r < 0 ? r : -5;
}

/* Appends the line "COUNT WORD\n" (COUNT already formatted: clen bytes at c). A line
 * longer than the whole buffer goes straight through in three writes. 0 or a negative
 * result of the failed call. */
static inline int64_t out_line(struct out *o, const char *c, uint64_t clen, const unsigned char *w, uint64_t wlen)
{
    uint64_t need = clen + 1 + wlen + 1;
    int64_t r;

    if (need > o->size - o->used) {
        if ((r = out_flush(o)) < 0)
            return r;
        if (need > o->size) {
            if ((r = out_direct(o, c, clen)) < 0 || (r = out_direct(o, " ", 1)) < 0 ||
                (r = out_direct(o, w, wlen)) < 0 || (r = out_direct(o, "\n", 1)) < 0)
                return r;
            return 0;
        }
    }
    memcpy(o->buf + o->used, c, clen);
    o->buf[o->used + clen] = ' ';
    memcpy(o->buf + o->used + clen + 1, w, wlen);
    o->buf[o->used + need - 1] = '\n';
    o->used += need;
    return 0;
}

#endif
