// libvips, from Debian's libvips-dev. Only the VipsShim C target includes it.
#include <vips/vips.h>
