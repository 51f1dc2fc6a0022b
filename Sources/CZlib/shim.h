#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros (they pass the library version and the stream size): Swift cannot call
   macros, so these wrappers do. Raw deflate (negative window bits): no zlib header or checksum, the caller frames. */
static inline int gh_deflate_init_raw(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

static inline int gh_inflate_init_raw(z_stream *s) {
    return inflateInit2(s, -15);
}
