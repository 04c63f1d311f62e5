#ifndef VIPS_SHIM_H
#define VIPS_SHIM_H

// A small, non-variadic C interface over the libvips calls the project uses. Swift cannot call
// C variadic functions, and keeping GLib out of this header keeps Swift's view of it small.

#include <stddef.h>

/// An image handle: a libvips `VipsImage`, released with `vshim_release`.
typedef struct _VipsImage VShimImage;

/// Starts libvips once per process. Returns 0 on success.
int vshim_start(void);

/// The last libvips error text (malloc'd; free with `vshim_free`), clearing it. Never NULL.
char *vshim_take_error(void);

/// Frees memory this interface handed out.
void vshim_free(void *pointer);

/// How strict a later decode is about damaged data.
enum {
    /// Decode whatever can be decoded.
    VSHIM_FAIL_ON_NONE = 0,
    /// Fail on truncated data.
    VSHIM_FAIL_ON_TRUNCATED = 1,
    /// Fail on any damage the decoder reports, warnings included (corrupt entropy-coded data).
    VSHIM_FAIL_ON_WARNING = 2,
};

/// Opens an image file lazily: only the header is read until pixels are needed.
/// `fail_on` (one of the `VSHIM_FAIL_ON_` values) sets how strict a later decode is.
VShimImage *vshim_open_file(const char *path, int fail_on);

/// Opens an image held in memory, as `vshim_open_file` does.
VShimImage *vshim_open_buffer(const void *bytes, size_t length, int fail_on);

/// Releases an image.
void vshim_release(VShimImage *image);

/// Image width, height and band count from the header.
int vshim_width(VShimImage *image);
int vshim_height(VShimImage *image);
int vshim_bands(VShimImage *image);

/// The EXIF orientation (1-8), or 0 when the image has none.
int vshim_orientation(VShimImage *image);

/// A header field as text (malloc'd; free with `vshim_free`), or NULL when absent.
char *vshim_field(VShimImage *image, const char *name);

/// The names of every header field, separated by newlines (malloc'd), or NULL.
char *vshim_field_names(VShimImage *image);

/// Decodes every pixel, so that truncated or corrupt data is found. Returns 0 when it decodes.
int vshim_decode_all(VShimImage *image);

/// Makes a JPEG thumbnail whose longer side is `size` pixels, with the EXIF orientation applied
/// and any alpha flattened onto white. Returns 0 and a malloc'd buffer on success.
int vshim_thumbnail_jpeg(const void *bytes, size_t length, int size, int quality, void **out, size_t *out_length);

/// Renders an image as `width` x `height` 8-bit sRGB pixels (exactly `width * height * 3` bytes
/// written to `out`), orientation applied, alpha flattened onto white, aspect ratio not kept.
int vshim_render_srgb(const void *bytes, size_t length, int width, int height, unsigned char *out);

/// Reduces an image held in memory to side x side grey levels as Pillow's
/// `convert("L").resize((side, side), LANCZOS)` does, orientation applied: decoded whole (JPEG
/// at most 4 times smaller on load), to sRGB, to grey with ITU-R 601 weights in 16-bit fixed
/// point, then reduced with a Lanczos-3 kernel spread over each output pixel's whole footprint.
/// Writes side * side bytes to `out`. 0 on success, -1 with the libvips error set.
int vshim_grey_square(const void *bytes, size_t length, int side, unsigned char *out);

/// Decodes every pixel as 8-bit sRGB (`width * height * 3` bytes, malloc'd into `out`), with the
/// EXIF orientation applied and any alpha band dropped, as a conversion to RGB does. Images with
/// more than `max_pixels` pixels are refused from their header. Returns 0 on success.
int vshim_decode_rgb(const void *bytes, size_t length, int max_pixels, int *width, int *height, unsigned char **out);

#endif
