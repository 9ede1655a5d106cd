/* sha1dc.h: SHA-1 with collision detection (see sha1dc.c). */
#ifndef GS_SHA1DC_H
#define GS_SHA1DC_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t ihv[5];
    uint64_t total;
    uint8_t buf[64];
    size_t buflen;
    int collision;
} gs_sha1dc_ctx;

void gs_sha1dc_init(gs_sha1dc_ctx *ctx);
void gs_sha1dc_update(gs_sha1dc_ctx *ctx, const void *data, size_t len);
/* Writes the digest; returns 1 when some block showed a collision attack, else 0. */
int gs_sha1dc_digest(const gs_sha1dc_ctx *ctx, uint8_t out[20]);
int gs_sha1dc(const void *data, size_t len, uint8_t out[20]);
/* Object id of b"<type> <len>\0" + data: 0, 1 on a collision, -1 on an unknown type. */
int gs_sha1dc_object_id(int type, const void *data, size_t len, uint8_t out[20]);
#endif
