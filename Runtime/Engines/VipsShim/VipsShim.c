#include "VipsShim.h"

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

int vshim_start(void) {
    static int started = 0;
    static GMutex lock;
    g_mutex_lock(&lock);
    int result = 0;
    if (!started) {
        result = VIPS_INIT("image-api");
        if (result == 0) {
            // Operations run on untrusted uploads once each: caching them only costs memory.
            vips_cache_set_max(0);
            vips_cache_set_max_mem(0);
            // Only loaders libvips marks as safe for untrusted input: no ImageMagick, PDF,
            // OpenSlide or scientific formats behind a sniffed file.
            vips_block_untrusted_set(TRUE);
            started = 1;
        }
    }
    g_mutex_unlock(&lock);
    return result;
}

char *vshim_take_error(void) {
    const char *text = vips_error_buffer();
    char *copy = strdup(text && *text ? text : "unknown libvips error");
    vips_error_clear();
    return copy;
}

void vshim_free(void *pointer) { free(pointer); }

static VipsFailOn fail_level(int fail_on) {
    switch (fail_on) {
    case VSHIM_FAIL_ON_WARNING: return VIPS_FAIL_ON_WARNING;
    case VSHIM_FAIL_ON_TRUNCATED: return VIPS_FAIL_ON_TRUNCATED;
    default: return VIPS_FAIL_ON_NONE;
    }
}

VShimImage *vshim_open_file(const char *path, int fail_on) {
    return vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", fail_level(fail_on), NULL);
}

VShimImage *vshim_open_buffer(const void *bytes, size_t length, int fail_on) {
    return vips_image_new_from_buffer(
        bytes, length, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", fail_level(fail_on), NULL);
}

void vshim_release(VShimImage *image) {
    if (image) g_object_unref(image);
}

int vshim_width(VShimImage *image) { return vips_image_get_width(image); }
int vshim_height(VShimImage *image) { return vips_image_get_height(image); }
int vshim_bands(VShimImage *image) { return vips_image_get_bands(image); }

int vshim_orientation(VShimImage *image) {
    int value = 0;
    if (vips_image_get_typeof(image, VIPS_META_ORIENTATION) && !vips_image_get_int(image, VIPS_META_ORIENTATION, &value))
        return value;
    return 0;
}

char *vshim_field(VShimImage *image, const char *name) {
    if (!vips_image_get_typeof(image, name)) return NULL;
    char *text = NULL;
    if (vips_image_get_as_string(image, name, &text)) {
        vips_error_clear();
        return NULL;
    }
    char *copy = strdup(text);
    g_free(text);
    return copy;
}

char *vshim_field_names(VShimImage *image) {
    gchar **names = vips_image_get_fields(image);
    if (!names) return NULL;
    gchar *joined = g_strjoinv("\n", names);
    g_strfreev(names);
    char *copy = strdup(joined);
    g_free(joined);
    return copy;
}

int vshim_decode_all(VShimImage *image) {
    // Strip by strip on this thread, top to bottom. A threaded sink (vips_avg) now and then lets
    // a decoder's failure through as an "error in tile" warning with success (libvips 8.14, a
    // corrupt JPEG scan: about one run in thirty); read on one thread, every failure is returned.
    VipsRegion *region = vips_region_new(image);
    if (!region) return -1;
    int width = vips_image_get_width(image);
    int height = vips_image_get_height(image);
    int result = 0;
    for (int top = 0; top < height && result == 0; top += 64) {
        VipsRect strip = {0, top, width, VIPS_MIN(64, height - top)};
        result = vips_region_prepare(region, &strip);
    }
    g_object_unref(region);
    return result;
}

// Converts to 8-bit sRGB with three bands, flattening alpha onto white (or, without
// `flatten_alpha`, dropping the alpha band). Takes ownership of `in`.
static VipsImage *to_srgb8(VipsImage *in, int flatten_alpha) {
    VipsImage *current = in;
    VipsImage *next = NULL;
    if (vips_colourspace(current, &next, VIPS_INTERPRETATION_sRGB, NULL)) goto fail;
    g_object_unref(current);
    current = next;
    if (flatten_alpha && vips_image_hasalpha(current)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int failed = vips_flatten(current, &next, "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (failed) goto fail;
        g_object_unref(current);
        current = next;
    }
    if (vips_image_get_bands(current) > 3) {
        if (vips_extract_band(current, &next, 0, "n", 3, NULL)) goto fail;
        g_object_unref(current);
        current = next;
    }
    if (vips_cast(current, &next, VIPS_FORMAT_UCHAR, NULL)) goto fail;
    g_object_unref(current);
    return next;
fail:
    g_object_unref(current);
    return NULL;
}

int vshim_thumbnail_jpeg(const void *bytes, size_t length, int size, int quality, void **out, size_t *out_length) {
    VipsImage *thumbnail = NULL;
    if (vips_thumbnail_buffer((void *)bytes, length, &thumbnail, size, "height", size, NULL)) return -1;
    VipsImage *rgb = to_srgb8(thumbnail, 1);
    if (!rgb) return -1;
    void *saved = NULL;
    size_t saved_length = 0;
    int failed = vips_jpegsave_buffer(rgb, &saved, &saved_length, "Q", quality, "strip", TRUE, NULL);
    g_object_unref(rgb);
    if (failed) return -1;
    *out = malloc(saved_length);
    memcpy(*out, saved, saved_length);
    *out_length = saved_length;
    g_free(saved);
    return 0;
}

// Writes an 8-bit image of exactly width x height x bands bytes to `out` and releases it; -1 with
// a libvips error naming `what` when its size is not that.
static int write_exactly(VipsImage *image, int width, int height, int bands, unsigned char *out, const char *what) {
    size_t written = 0;
    void *pixels = vips_image_write_to_memory(image, &written);
    int ok = pixels && written == (size_t)width * (size_t)height * (size_t)bands &&
             vips_image_get_width(image) == width && vips_image_get_height(image) == height &&
             vips_image_get_bands(image) == bands;
    if (ok) memcpy(out, pixels, written);
    g_free(pixels);
    g_object_unref(image);
    if (!ok) {
        vips_error("vshim", "%s produced an unexpected size", what);
        return -1;
    }
    return 0;
}

int vshim_render_srgb(const void *bytes, size_t length, int width, int height, unsigned char *out) {
    VipsImage *small = NULL;
    if (vips_thumbnail_buffer(
            (void *)bytes, length, &small, width, "height", height, "size", VIPS_SIZE_FORCE, NULL))
        return -1;
    VipsImage *rgb = to_srgb8(small, 1);
    if (!rgb) return -1;
    return write_exactly(rgb, width, height, 3, out, "rendering");
}

int vshim_decode_rgb(const void *bytes, size_t length, int max_pixels, int *width, int *height, unsigned char **out) {
    VipsImage *image = vips_image_new_from_buffer(bytes, length, "", "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    if (!image) return -1;
    if ((long long)vips_image_get_width(image) * vips_image_get_height(image) > (long long)max_pixels) {
        g_object_unref(image);
        vips_error("vshim", "the image has more than %d pixels", max_pixels);
        return -1;
    }
    VipsImage *current = image;
    VipsImage *next = NULL;
    if (vips_autorot(current, &next, NULL)) goto fail;
    g_object_unref(current);
    current = to_srgb8(next, 0);
    if (!current) return -1;
    size_t written = 0;
    void *pixels = vips_image_write_to_memory(current, &written);
    int w = vips_image_get_width(current), h = vips_image_get_height(current);
    g_object_unref(current);
    if (!pixels || written != (size_t)w * (size_t)h * 3) {
        g_free(pixels);
        vips_error("vshim", "decoding produced an unexpected size");
        return -1;
    }
    *width = w;
    *height = h;
    *out = malloc(written);
    memcpy(*out, pixels, written);
    g_free(pixels);
    return 0;
fail:
    g_object_unref(current);
    return -1;
}

int vshim_grey_square(const void *bytes, size_t length, int side, unsigned char *out) {
    VipsImage *header = vips_image_new_from_buffer(bytes, length, "", NULL);
    if (!header) return -1;
    const char *loader = NULL;
    int shrink = 1;
    if (!vips_image_get_string(header, "vips-loader", &loader) && loader && g_str_has_prefix(loader, "jpegload")) {
        int shorter = MIN(vips_image_get_width(header), vips_image_get_height(header));
        // Keep at least 8 decoded pixels for each output pixel.
        while (shrink < 4 && shorter / (shrink * 2) >= side * 8) shrink *= 2;
    }
    g_object_unref(header);
    VipsImage *current = shrink > 1 ? vips_image_new_from_buffer(bytes, length, "", "shrink", shrink, NULL)
                                    : vips_image_new_from_buffer(bytes, length, "", NULL);
    if (!current) return -1;
    VipsImage *next = NULL;
    if (vips_autorot(current, &next, NULL)) goto fail;
    g_object_unref(current);
    current = to_srgb8(next, 0);
    if (!current) return -1;
    // Grey as Pillow's "L": (19595 R + 38470 G + 7471 B + 32768) >> 16, rounded once.
    VipsImage *matrix = vips_image_new_matrixv(3, 1, 19595.0 / 65536, 38470.0 / 65536, 7471.0 / 65536);
    int failed = vips_recomb(current, &next, matrix, NULL);
    g_object_unref(matrix);
    if (failed) goto fail;
    g_object_unref(current);
    current = next;
    if (vips_linear1(current, &next, 1.0, 0.5, NULL)) goto fail;
    g_object_unref(current);
    current = next;
    if (vips_cast(current, &next, VIPS_FORMAT_UCHAR, NULL)) goto fail;
    g_object_unref(current);
    current = next;
    double hshrink = (double)vips_image_get_width(current) / side;
    double vshrink = (double)vips_image_get_height(current) / side;
    if (vips_reduce(current, &next, hshrink, vshrink, "kernel", VIPS_KERNEL_LANCZOS3, NULL)) goto fail;
    g_object_unref(current);
    return write_exactly(next, side, side, 1, out, "reducing to grey");
fail:
    g_object_unref(current);
    return -1;
}
