/* sha1.c: SHA-1 written from FIPS 180-4 (Secure Hash Standard), sections 4.1.1
 * (functions), 4.2.1 (constants), 5.1.1 (padding), 5.3.1 (initial hash value) and
 * 6.1.2 (hash computation). The 80-word schedule is kept as a 16-word ring buffer
 * (W[t] depends only on W[t-3], W[t-8], W[t-14], W[t-16]) and the five working
 * variables rotate by renaming in the round macros instead of by moves.
 */
#include <string.h>

#include "native.h"

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Ch, Parity and Maj of 4.1.1, in forms with fewer operations but equal values. */
#define F_CH(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define F_PAR(b, c, d) ((b) ^ (c) ^ (d))
#define F_MAJ(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))

#define K0 0x5a827999u
#define K1 0x6ed9eba1u
#define K2 0x8f1bbcdcu
#define K3 0xca62c1d6u

#define W_LOAD(t) (W[t] = load_be32(p + 4 * (t)))
#define W_NEXT(t)                                                                   \
    (W[(t) & 15] = ROL(W[((t) + 13) & 15] ^ W[((t) + 8) & 15] ^ W[((t) + 2) & 15] ^ \
                       W[(t) & 15], 1))

#define ROUND(a, b, c, d, e, F, K, w)              \
    do {                                           \
        e += ROL(a, 5) + F(b, c, d) + (K) + (w);   \
        b = ROL(b, 30);                            \
    } while (0)

#define R5_LOAD(t)                                                \
    ROUND(a, b, c, d, e, F_CH, K0, W_LOAD(t));                    \
    ROUND(e, a, b, c, d, F_CH, K0, W_LOAD((t) + 1));              \
    ROUND(d, e, a, b, c, F_CH, K0, W_LOAD((t) + 2));              \
    ROUND(c, d, e, a, b, F_CH, K0, W_LOAD((t) + 3));              \
    ROUND(b, c, d, e, a, F_CH, K0, W_LOAD((t) + 4))

#define R5(t, F, K)                                               \
    ROUND(a, b, c, d, e, F, K, W_NEXT(t));                        \
    ROUND(e, a, b, c, d, F, K, W_NEXT((t) + 1));                  \
    ROUND(d, e, a, b, c, F, K, W_NEXT((t) + 2));                  \
    ROUND(c, d, e, a, b, F, K, W_NEXT((t) + 3));                  \
    ROUND(b, c, d, e, a, F, K, W_NEXT((t) + 4))

static void sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks) {
    uint32_t W[16];
    while (nblocks--) {
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        R5_LOAD(0);
        R5_LOAD(5);
        R5_LOAD(10);
        /* t = 15 is the last loaded word, 16..19 the first computed ones */
        ROUND(a, b, c, d, e, F_CH, K0, W_LOAD(15));
        ROUND(e, a, b, c, d, F_CH, K0, W_NEXT(16));
        ROUND(d, e, a, b, c, F_CH, K0, W_NEXT(17));
        ROUND(c, d, e, a, b, F_CH, K0, W_NEXT(18));
        ROUND(b, c, d, e, a, F_CH, K0, W_NEXT(19));
        R5(20, F_PAR, K1);
        R5(25, F_PAR, K1);
        R5(30, F_PAR, K1);
        R5(35, F_PAR, K1);
        R5(40, F_MAJ, K2);
        R5(45, F_MAJ, K2);
        R5(50, F_MAJ, K2);
        R5(55, F_MAJ, K2);
        R5(60, F_PAR, K3);
        R5(65, F_PAR, K3);
        R5(70, F_PAR, K3);
        R5(75, F_PAR, K3);
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        p += 64;
    }
}

void gs_sha1_init(gs_sha1_ctx *ctx) {
    ctx->h[0] = 0x67452301u;
    ctx->h[1] = 0xefcdab89u;
    ctx->h[2] = 0x98badcfeu;
    ctx->h[3] = 0x10325476u;
    ctx->h[4] = 0xc3d2e1f0u;
    ctx->total = 0;
    ctx->buflen = 0;
}

void gs_sha1_update(gs_sha1_ctx *ctx, const void *input, size_t len) {
    const uint8_t *data = input;
    ctx->total += len;
    if (ctx->buflen) {
        size_t take = 64 - ctx->buflen;
        if (take > len)
            take = len;
        memcpy(ctx->buf + ctx->buflen, data, take);
        ctx->buflen += take;
        data += take;
        len -= take;
        if (ctx->buflen < 64)
            return;
        sha1_blocks(ctx->h, ctx->buf, 1);
        ctx->buflen = 0;
    }
    if (len >= 64) {
        sha1_blocks(ctx->h, data, len / 64);
        data += len & ~(size_t)63;
        len &= 63;
    }
    if (len) {
        memcpy(ctx->buf, data, len);
        ctx->buflen = len;
    }
}

void gs_sha1_digest(const gs_sha1_ctx *ctx, uint8_t out[20]) {
    /* 5.1.1: append 0x80, zeros to 56 mod 64, then the bit length as 64-bit big endian */
    uint8_t block[128];
    uint32_t h[5];
    size_t n = ctx->buflen;
    uint64_t bits = ctx->total * 8;
    size_t padded = n < 56 ? 64 : 128;
    memcpy(h, ctx->h, sizeof h);
    memcpy(block, ctx->buf, n);
    block[n] = 0x80;
    memset(block + n + 1, 0, padded - n - 1);
    for (int i = 0; i < 8; i++)
        block[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_blocks(h, block, padded / 64);
    for (int i = 0; i < 5; i++)
        store_be32(out + 4 * i, h[i]);
}

void gs_sha1(const void *data, size_t len, uint8_t out[20]) {
    gs_sha1_ctx ctx;
    gs_sha1_init(&ctx);
    gs_sha1_update(&ctx, data, len);
    gs_sha1_digest(&ctx, out);
}

/* Writes "<typename> <len>\0" into hdr (at least 32 bytes); returns its length or -1. */
int gs_object_header(int type, uint64_t len, uint8_t *hdr) {
    static const char *const names[] = {NULL, "commit", "tree", "blob", "tag"};
    char digits[24];
    int nd = 0, n;
    if (type < 1 || type > 4)
        return -1;
    n = (int)strlen(names[type]);
    memcpy(hdr, names[type], (size_t)n);
    hdr[n++] = ' ';
    do {
        digits[nd++] = (char)('0' + len % 10);
        len /= 10;
    } while (len);
    while (nd)
        hdr[n++] = (uint8_t)digits[--nd];
    hdr[n++] = 0;
    return n;
}

int gs_object_id(int type, const void *data, size_t len, uint8_t out[20]) {
    uint8_t hdr[32];
    gs_sha1_ctx ctx;
    int n = gs_object_header(type, len, hdr);
    if (n < 0)
        return -1;
    gs_sha1_init(&ctx);
    gs_sha1_update(&ctx, hdr, (size_t)n);
    gs_sha1_update(&ctx, data, len);
    gs_sha1_digest(&ctx, out);
    return 0;
}
