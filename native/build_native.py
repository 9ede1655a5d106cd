"""cffi (API mode) build of native._native from native/src/*.c, linked against zlib.

Rules: used by setup.py (``cffi_modules``) so ``pip install -e .`` builds the extension in
place; ``python native/build_native.py`` does the same by hand. The cdef below is the
only C surface Python sees; keep it in step with native/src/native.h (input buffers are ``const char *`` here and
``const void *`` in C, so Python bytes pass straight through).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

from cffi import FFI

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CDEF = """
typedef struct { ...; } gs_sha1_ctx;
void gs_sha1_init(gs_sha1_ctx *ctx);
void gs_sha1_update(gs_sha1_ctx *ctx, const char *data, size_t len);
void gs_sha1_digest(const gs_sha1_ctx *ctx, uint8_t out[20]);
void gs_sha1(const char *data, size_t len, uint8_t out[20]);
int gs_object_id(int type, const char *data, size_t len, uint8_t out[20]);

int gs_delta_header(const char *delta, size_t len, uint64_t *base_size,
                    uint64_t *result_size, size_t *header_len);
int gs_delta_apply(const char *base, size_t base_len, const char *delta,
                   size_t delta_len, uint8_t *out, size_t out_len);
const char *gs_delta_strerror(int code);

typedef struct {
    uint64_t offset;
    uint64_t size;
    uint64_t length;
    int64_t base_offset;
    uint32_t header_len;
    uint32_t crc32;
    int kind;
    int has_oid;
    int has_base_oid;
    uint8_t oid[20];
    uint8_t base_oid[20];
} gs_entry;
typedef struct gs_scanner gs_scanner;
gs_scanner *gs_scanner_new(uint64_t max_object_size);
void gs_scanner_free(gs_scanner *s);
int gs_scanner_feed(gs_scanner *s, const char *data, size_t len, size_t *consumed,
                    gs_entry *out, size_t cap, size_t *nout);
int gs_scanner_finish(gs_scanner *s, uint8_t out[20]);
const char *gs_scanner_error(const gs_scanner *s);
int64_t gs_scanner_object_count(const gs_scanner *s);

int gs_tree_links(const char *data, size_t len, uint8_t *trees, size_t *ntrees,
                  uint8_t *blobs, size_t *nblobs, size_t *err_pos);

typedef struct { ...; } gs_sha1dc_ctx;
void gs_sha1dc_init(gs_sha1dc_ctx *ctx);
void gs_sha1dc_update(gs_sha1dc_ctx *ctx, const char *data, size_t len);
int gs_sha1dc_digest(const gs_sha1dc_ctx *ctx, uint8_t out[20]);
int gs_sha1dc_object_id(int type, const char *data, size_t len, uint8_t out[20]);
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
int gs_resolver_feed(gs_resolver *r, const char *data, size_t len);
int gs_resolver_finish(gs_resolver *r, uint8_t checksum[20]);
uint64_t gs_resolver_entries(const gs_resolver *r);
uint64_t gs_resolver_deltas(const gs_resolver *r);
uint64_t gs_resolver_deltas_done(const gs_resolver *r);
void gs_resolver_set_fd(gs_resolver *r, int fd);
int gs_resolver_next(gs_resolver *r, gs_resolved *out, size_t cap, size_t *nout, gs_parse *parse);
int gs_resolver_add_links(gs_resolver *r, uint32_t src, const char *oids, const char *types, size_t n);
size_t gs_resolver_pending_bases(const gs_resolver *r, uint8_t *out, size_t cap);
int gs_resolver_add_base(gs_resolver *r, const char *oid, int type, const char *data, size_t len,
                         uint32_t depth);
int gs_resolver_first_unresolved(const gs_resolver *r, uint64_t *offset, int *kind, uint8_t base[20]);
int gs_resolver_wrong_link(const gs_resolver *r, uint8_t src[20], uint8_t oid[20], int *want, int *got);
size_t gs_resolver_external_links(const gs_resolver *r, uint64_t *cursor, uint8_t *srcs, uint8_t *oids,
                                  uint8_t *types, size_t cap);
size_t gs_resolver_unnamed(const gs_resolver *r, uint64_t *cursor, uint8_t *oids, size_t cap);
"""


def make_builder(absolute_paths: bool = False) -> FFI:
    """The cffi builder; setuptools wants source paths relative to the project root, while
    cffi's own compile() runs the compiler from a temporary directory and needs absolute ones."""
    builder = FFI()
    builder.cdef(CDEF)
    sources = sorted(glob.glob(os.path.join(_ROOT, "native", "src", "*.c")))
    builder.set_source(
        "native._native",
        '#include "native.h"\n#include "sha1dc.h"',
        sources=sources if absolute_paths else [os.path.relpath(p, _ROOT) for p in sources],
        include_dirs=[os.path.join(_ROOT, "native", "src")],
        libraries=["z"],
        extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra"],  # -O3: SHA-1DC +13%
    )
    return builder


ffibuilder = make_builder()


def build_in_place(tmpdir: str | None = None) -> str:
    """Compile into ``tmpdir`` (default build/cffi) and move the module next to this file;
    returns its path. The old file is replaced by a rename, never rewritten: running
    processes that mapped it keep the old inode."""
    os.chdir(_ROOT)
    built = make_builder(absolute_paths=True).compile(
        tmpdir=tmpdir or os.path.join("build", "cffi"), verbose=False
    )
    dest = os.path.join(_ROOT, "native", os.path.basename(built))
    staged = dest + ".new"
    shutil.copy2(built, staged)
    os.replace(staged, dest)
    return dest


if __name__ == "__main__":
    sys.stdout.write(build_in_place(sys.argv[1] if len(sys.argv) > 1 else None) + "\n")
