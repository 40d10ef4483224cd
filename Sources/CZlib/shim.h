#ifndef MODELCACHE_CZLIB_SHIM_H
#define MODELCACHE_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 is a macro Swift cannot import.
static inline int modelcache_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
static inline int modelcache_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
