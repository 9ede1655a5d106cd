/* native.h: the C side of native/ (SHA-1, object ids, git delta apply, pack scanner).
 *
 * Rules: every function is safe on hostile input (bounds-checked, no UB); errors are
 * negative return codes, never aborts. Input buffers are `const void *` so the cffi
 * layer can declare them `const char *` and pass Python bytes without a copy or wrapper.
 * Nothing here touches Python: the cffi wrapper in
 * native/cext.py calls these with the GIL released. Objects are not thread-safe: one
 * thread at a time per gs_sha1_ctx / gs_scanner.
 */
#ifndef GS_NATIVE_H
#define GS_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* ---- SHA-1 (FIPS 180-4, section 6.1) ---- */
typedef struct {
    uint32_t h[5];
    uint64_t total;      /* bytes hashed so far */
    uint8_t buf[64];     /* partial block */
    size_t buflen;
} gs_sha1_ctx;

void gs_sha1_init(gs_sha1_ctx *ctx);
void gs_sha1_update(gs_sha1_ctx *ctx, const void *data, size_t len);
/* Digest of everything so far; ctx is left unchanged (more updates may follow). */
void gs_sha1_digest(const gs_sha1_ctx *ctx, uint8_t out[20]);
void gs_sha1(const void *data, size_t len, uint8_t out[20]);
/* SHA-1 of "<typename> <len>\0" + data; returns -1 for an unknown type number. */
int gs_object_id(int type, const void *data, size_t len, uint8_t out[20]);
/* Writes "<typename> <len>\0" into hdr (32 bytes); its length, or -1 for a bad type. */
int gs_object_header(int type, uint64_t len, uint8_t *hdr);

/* ---- git delta (gitformat-pack, "Deltified representation") ---- */
#define GS_DELTA_OK 0
#define GS_DELTA_TRUNCATED_HEADER (-1)
#define GS_DELTA_VARINT_TOO_LONG (-2)
#define GS_DELTA_BASE_SIZE (-3)
#define GS_DELTA_RESULT_SIZE (-4)
#define GS_DELTA_TRUNCATED_OP (-5)
#define GS_DELTA_RESERVED_OP (-6)
#define GS_DELTA_COPY_OUTSIDE_BASE (-7)
#define GS_DELTA_OVERFLOW (-8)
#define GS_DELTA_SHORT (-9)

int gs_delta_header(const void *delta, size_t len, uint64_t *base_size,
                    uint64_t *result_size, size_t *header_len);
/* out has exactly out_len bytes, the result size the header declares. */
int gs_delta_apply(const void *base, size_t base_len, const void *delta,
                   size_t delta_len, uint8_t *out, size_t out_len);
const char *gs_delta_strerror(int code);

/* ---- pack scanner (gitformat-pack, "pack-*.pack files") ---- */
typedef struct {
    uint64_t offset;
    uint64_t size;
    uint64_t length;
    int64_t base_offset;   /* -1 unless ofs-delta */
    uint32_t header_len;
    uint32_t crc32;
    int kind;
    int has_oid;
    int has_base_oid;
    uint8_t oid[20];
    uint8_t base_oid[20];
} gs_entry;

typedef struct gs_scanner gs_scanner;

/* max_object_size: UINT64_MAX for no limit. NULL if out of memory. */
gs_scanner *gs_scanner_new(uint64_t max_object_size);
void gs_scanner_free(gs_scanner *s);
/* Consumes data until it is used up or `cap` entries completed; *consumed says how much.
 * Returns 0, or -1 on a bad pack (message from gs_scanner_error; the scanner is dead). */
int gs_scanner_feed(gs_scanner *s, const void *data, size_t len, size_t *consumed,
                    gs_entry *out, size_t cap, size_t *nout);
/* 0 and the trailer in out, or -1 (truncated, extra data, checksum mismatch). */
int gs_scanner_finish(gs_scanner *s, uint8_t out[20]);
const char *gs_scanner_error(const gs_scanner *s);
int64_t gs_scanner_object_count(const gs_scanner *s);  /* -1 until the header is read */

/* ---- tree entries (gitformat: "<octal mode> <name>\0<20-byte id>") ---- */
#define GS_TREE_BAD_ENTRY (-1) /* truncated entry, or no space within 8 bytes */
#define GS_TREE_BAD_NAME (-2)  /* empty, "/" inside, "." or ".." */
#define GS_TREE_BAD_MODE (-3)  /* not octal, or not a tree/blob/symlink/gitlink type */
/* Ids of subtrees into trees, of blobs and symlinks into blobs (20 bytes each; both
 * buffers hold len bytes); gitlinks skipped. 0, or an error code with *err_pos the
 * offset of the bad entry. */
int gs_tree_links(const void *data, size_t len, uint8_t *trees, size_t *ntrees,
                  uint8_t *blobs, size_t *nblobs, size_t *err_pos);

/* ---- resolver: a pushed pack from scan to resolved rows and checked links (resolve.c) ---- */
#define GS_RES_CORRUPT (-1) /* a delta does not apply, or a collision attack */
#define GS_RES_LIMIT (-2)   /* a delta's result exceeds max_object_size */
#define GS_RES_FORMAT (-3)  /* the pack is malformed (scanner), or zlib data went bad */
#define GS_RES_NOMEM (-4)
#define GS_RES_IO (-5)      /* the pack file could not be read back */

typedef struct {
    uint64_t offset;
    uint64_t size;
    uint64_t length;
    uint32_t header_len;
    uint32_t crc32;
    uint32_t depth;
    int type;
    int kind;
    int has_base;
    uint8_t oid[20];
    uint8_t base[20];
} gs_resolved;

typedef struct {
    uint32_t index;
    int type;
    uint8_t oid[20];
    const uint8_t *data;
    size_t len;
} gs_parse;

typedef struct gs_resolver gs_resolver;
gs_resolver *gs_resolver_new(uint64_t max_object_size, uint64_t cache_bytes);
void gs_resolver_free(gs_resolver *r);
const char *gs_resolver_error(const gs_resolver *r);
int gs_resolver_feed(gs_resolver *r, const void *data, size_t len);
int gs_resolver_finish(gs_resolver *r, uint8_t checksum[20]);
uint64_t gs_resolver_entries(const gs_resolver *r);
uint64_t gs_resolver_deltas(const gs_resolver *r);
uint64_t gs_resolver_deltas_done(const gs_resolver *r);
/* The pack's file: feed writes each piece to it (when set before feeding), the walk reads it. */
void gs_resolver_set_fd(gs_resolver *r, int fd);
/* 0: rows written (none: all done), 1: rows, then *parse wants parsing by the caller
 * (valid until the next call); < 0: GS_RES_* error, message in gs_resolver_error. */
int gs_resolver_next(gs_resolver *r, gs_resolved *out, size_t cap, size_t *nout, gs_parse *parse);
int gs_resolver_add_links(gs_resolver *r, uint32_t src, const void *oids, const void *types, size_t n);
size_t gs_resolver_pending_bases(const gs_resolver *r, uint8_t *out, size_t cap);
/* 1: the base was awaited and its subtree is queued (call next); 0: nothing awaits it. */
int gs_resolver_add_base(gs_resolver *r, const void *oid, int type, const void *data, size_t len,
                         uint32_t depth);
/* 0: everything resolved; 1: the first unresolved entry is an ofs-delta; 2: a ref-delta. */
int gs_resolver_first_unresolved(const gs_resolver *r, uint64_t *offset, int *kind, uint8_t base[20]);
int gs_resolver_wrong_link(const gs_resolver *r, uint8_t src[20], uint8_t oid[20], int *want, int *got);
size_t gs_resolver_external_links(const gs_resolver *r, uint64_t *cursor, uint8_t *srcs, uint8_t *oids,
                                  uint8_t *types, size_t cap);
size_t gs_resolver_unnamed(const gs_resolver *r, uint64_t *cursor, uint8_t *oids, size_t cap);

#endif
