// libjpeg decoding with its longjmp errors turned into return codes (see CLadonJPEG.h).
#include "CLadonJPEG.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
} ErrorManager;

static void error_exit(j_common_ptr cinfo) {
    longjmp(((ErrorManager *)cinfo->err)->escape, 1);
}

// Warnings (level -1: corrupt data, premature end, extraneous bytes) stop the decode, like TJFLAG_STOPONWARNING;
// trace messages (level >= 0) are ignored.
static void emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) longjmp(((ErrorManager *)cinfo->err)->escape, 1);
}

static void copy_message(j_common_ptr cinfo, char *message, size_t message_size) {
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    if (message_size > 0) {
        strncpy(message, text, message_size - 1);
        message[message_size - 1] = 0;
    }
}

static int is_cmyk(const struct jpeg_decompress_struct *cinfo) {
    return cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
}

// Reads the header into `*width`, `*height`, `*cmyk`; then, when `out` is given, checks them against the expected
// `expect_*` values and decodes into `out`. One function so that one setjmp frame covers every libjpeg call.
static int read_jpeg(const unsigned char *data, size_t size, int *width, int *height, int *cmyk, unsigned char *out,
                     int expect_width, int expect_height, int expect_cmyk, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    ErrorManager errors;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = error_exit;
    errors.base.emit_message = emit_message;
    if (setjmp(errors.escape)) {
        copy_message((j_common_ptr)&cinfo, message, message_size);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    *cmyk = is_cmyk(&cinfo);
    if (!out) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    if (*width != expect_width || *height != expect_height || *cmyk != expect_cmyk) {
        snprintf(message, message_size, "the header changed between reads");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = *cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)expect_width * (*cmyk ? 4 : 3);
    if ((int)cinfo.output_width != expect_width || (int)cinfo.output_height != expect_height ||
        (size_t)cinfo.output_components * (size_t)expect_width != stride) {
        snprintf(message, message_size, "libjpeg would write %ux%u×%d, not %dx%d", cinfo.output_width,
                 cinfo.output_height, cinfo.output_components, expect_width, expect_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int cladon_jpeg_header(const unsigned char *data, size_t size, int *width, int *height, int *cmyk, char *message,
                       size_t message_size) {
    return read_jpeg(data, size, width, height, cmyk, NULL, 0, 0, 0, message, message_size);
}

int cladon_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, int width, int height, int cmyk,
                       char *message, size_t message_size) {
    int w = 0, h = 0, c = 0;
    return read_jpeg(data, size, &w, &h, &c, out, width, height, cmyk, message, message_size);
}
