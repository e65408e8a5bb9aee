// JPEG decoding through the libjpeg API of the system libjpeg-turbo, for the files TurboJPEG 2.1 refuses: chroma
// subsampling it cannot name (4:1:0, 3:1:1, per-component oddities), which libjpeg itself, and Pillow, decode.
// libjpeg reports errors by longjmp, which Swift cannot catch, so this small C layer turns them into return codes.
#ifndef CLADON_JPEG_H
#define CLADON_JPEG_H

#include <stddef.h>

/// Reads the header: `*width`, `*height`, and `*cmyk` = 1 for CMYK or YCCK data (decoded as 4 channels), else 0.
/// Returns 0, or -1 with libjpeg's message in `message` (NUL-terminated, at most `message_size` bytes).
int cladon_jpeg_header(const unsigned char *data, size_t size, int *width, int *height, int *cmyk, char *message,
                       size_t message_size);

/// Decodes the image into `out` (`width * height * (cmyk ? 4 : 3)` bytes, rows top to bottom): RGB, or CMYK as
/// stored, with the accurate integer DCT and fancy upsampling (libjpeg's defaults, as Pillow decodes). Any libjpeg
/// warning (damaged data, premature end) is an error. Returns 0, or -1 with the message as above.
int cladon_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, int width, int height, int cmyk,
                       char *message, size_t message_size);

#endif
