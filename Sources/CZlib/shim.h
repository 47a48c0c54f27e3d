#ifndef PTFRAG_CZLIB_SHIM_H
#define PTFRAG_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro in zlib.h; Swift cannot call macros. */
static inline int ptfrag_inflateInit2(z_streamp strm, int windowBits) {
  return inflateInit2(strm, windowBits);
}
/* deflateInit2 likewise (tests write gzip fixtures). */
static inline int ptfrag_deflateInit2(z_streamp strm, int level, int windowBits) {
  return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
