#ifndef PREFECT_EXPORTER_CZLIB_H
#define PREFECT_EXPORTER_CZLIB_H
#include <zlib.h>
/* deflateInit2 is a macro; expose it as a function Swift can call. */
static inline int pe_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}
#endif
