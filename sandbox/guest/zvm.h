/*
 * zvm.h - the zerolab guest API (ZeroVM's six calls under ZeroVM's names).
 *
 * A guest is one static x86-64 program. It talks to the world only through
 * the channels its manifest declares, with six calls that enter the
 * trampoline page the runtime maps at ZVM_TRAMPOLINE. Every call returns a
 * non-negative result or a negated errno (-EINVAL, -EDQUOT, ...).
 *
 * Build guests with sandbox/guest/zvm-gcc, which adds this directory to the
 * include path, the start-up code and the few freestanding helpers gcc needs.
 */
#ifndef ZVM_H
#define ZVM_H

#include <stdint.h>
#include <stddef.h>

/* Where the runtime maps the trampoline page and the read-only manifest. */
#define ZVM_TRAMPOLINE 0x10000UL
#define ZVM_MANIFEST_ADDR 0x20000UL

/* Gate offsets inside the trampoline page (one gate per call). */
#define ZVM_GATE_PREAD 0x00
#define ZVM_GATE_PWRITE 0x20
#define ZVM_GATE_JAIL 0x40
#define ZVM_GATE_UNJAIL 0x60
#define ZVM_GATE_FORK 0x80
#define ZVM_GATE_EXIT 0xA0
/* Not one of the six: sets the thread pointer (the fs base) for a libc. */
#define ZVM_GATE_SET_FS 0x1E0

/* zvm_jail/zvm_unjail regions: 64 KiB aligned, a multiple of 64 KiB long. */
#define ZVM_JAIL_ALIGN 0x10000UL

/* Indices into struct ZVMChannel.limits, in manifest order. */
enum { GetsLimit = 0, GetSizeLimit = 1, PutsLimit = 2, PutSizeLimit = 3, LimitsNumber = 4 };

/* Channel types, as in the manifest's third field. */
enum AccessType {
    SGetSPut = 0, /* sequential get, sequential put */
    RGetSPut = 1, /* random get, sequential put (append) */
    SGetRPut = 2, /* sequential get, random put */
    RGetRPut = 3  /* random get, random put */
};

struct ZVMChannel {
    int64_t limits[LimitsNumber]; /* gets, get_size, puts, put_size */
    int64_t size;                 /* bytes at start for random channels, else 0 */
    int64_t type;                 /* enum AccessType */
    const char *name;             /* the alias: "/dev/stdin", "/dev/in/map-1", ... */
};

struct UserManifest {
    void *heap_ptr;      /* start of the preallocated heap */
    uint64_t heap_size;  /* its size in bytes */
    uint64_t stack_size; /* the stack's size in bytes */
    int64_t channels_count;
    const struct ZVMChannel *channels; /* stdin, stdout, stderr, then by alias */
};

/* The guest's read-only description of itself. */
#define MANIFEST ((const struct UserManifest *)ZVM_MANIFEST_ADDR)

#define ZVM_GATE(off) (ZVM_TRAMPOLINE + (off))

static inline int64_t zvm_pread(int desc, void *buf, int64_t size, int64_t offset)
{
    return ((int64_t (*)(int, void *, int64_t, int64_t))ZVM_GATE(ZVM_GATE_PREAD))(desc, buf, size, offset);
}

static inline int64_t zvm_pwrite(int desc, const void *buf, int64_t size, int64_t offset)
{
    return ((int64_t (*)(int, const void *, int64_t, int64_t))ZVM_GATE(ZVM_GATE_PWRITE))(desc, buf, size, offset);
}

/* Validate the code in a heap region and make it read+execute (no longer writable). */
static inline int64_t zvm_jail(void *addr, int64_t size)
{
    return ((int64_t (*)(void *, int64_t))ZVM_GATE(ZVM_GATE_JAIL))(addr, size);
}

/* Make a heap region read+write again (and no longer executable). */
static inline int64_t zvm_unjail(void *addr, int64_t size)
{
    return ((int64_t (*)(void *, int64_t))ZVM_GATE(ZVM_GATE_UNJAIL))(addr, size);
}

/* Daemon mode: returns -ENOSYS until daemon mode lands. */
static inline int64_t zvm_fork(void)
{
    return ((int64_t (*)(void))ZVM_GATE(ZVM_GATE_FORK))();
}

/* End the session; `code` is the user return code in the report. */
static inline __attribute__((noreturn)) void zvm_exit(int64_t code)
{
    ((void (*)(int64_t))ZVM_GATE(ZVM_GATE_EXIT))(code);
    __builtin_trap(); /* ud2: if the gate ever returned, fault rather than run on */
}

/* Set the thread pointer (fs base) to `base`; 0 or a negated errno. Only a
 * libc's start-up needs it (zvm-cc's runtime calls it); zvm-gcc guests have no TLS. */
static inline int64_t zvm_set_fs(void *base)
{
    return ((int64_t (*)(void *))ZVM_GATE(ZVM_GATE_SET_FS))(base);
}

/* Freestanding helpers zvm-gcc links into every guest. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* Small conveniences built on the six calls (zvmlib.c). */
int64_t zvm_write_all(int desc, const void *buf, int64_t size); /* sequential put of all bytes */
int64_t zvm_puts(int desc, const char *s);                       /* writes s (no newline added) */
int64_t zvm_put_int(int desc, int64_t v);                        /* writes v in decimal */
/* Writes "WHO: WHAT NAME failed (error E)\n" to /dev/stderr, E a call's negated errno. */
void zvm_say_failed(const char *who, const char *what, const char *name, int64_t err);
int zvm_channel(const char *alias);                              /* desc of alias, or -1 */
const char *zvm_getenv(const char *name);                        /* from the Env manifest lines */
void *zvm_sbrk(int64_t increment);                               /* bump allocator over the heap */
int64_t zvm_parse_u64(const char *s);                            /* decimal digits only, else -1 */

/*
 * The next channel after desc `after` (-1 to start) whose alias starts with
 * `prefix`, or -1 when there is none. Descs are manifest order: stdin, stdout,
 * stderr, then by alias, so this visits "/dev/in/map-1", "/dev/in/map-2", ...
 * in alias order (byte order: "map-10" comes before "map-2"):
 *
 *     for (int d = zvm_channel_next("/dev/in/", -1); d >= 0; d = zvm_channel_next("/dev/in/", d))
 *         read_all(d);
 */
int zvm_channel_next(const char *prefix, int after);

#endif
