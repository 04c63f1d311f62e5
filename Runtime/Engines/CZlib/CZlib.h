// zlib, from Debian's zlib1g-dev: gzip decompression of the original CLIP vocabulary file.
#include <zlib.h>
