/* qr.c: QR codes as SVG with libqrencode (error correction H, as the
 * original site's invitation QR; 4-module quiet zone so scanners and
 * zbarimg find it). One <path> of unit squares, scaled by the viewBox. */
#include <qrencode.h>
#include <string.h>

#include "http/http_int.h"

#define QR_QUIET 4

int qr_svg(const char *data, size_t len, struct buf *out)
{
    if (len == 0 || len > LIM_HTTP_QR_DATA)
        return -1;
    QRcode *q = QRcode_encodeData((int)len, (const unsigned char *)data, 0, QR_ECLEVEL_H);
    if (!q)
        return -1;
    int w = q->width, full = w + 2 * QR_QUIET;
    int rc = buf_printf(out,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                        "shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">"
                        "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                        full, full, full, full);
    for (int y = 0; y < w && rc == 0; y++) {
        for (int x = 0; x < w; x++) {
            if (!(q->data[y * w + x] & 1))
                continue;
            int run = 1;
            while (x + run < w && (q->data[y * w + x + run] & 1))
                run++;
            rc |= buf_printf(out, "M%d %dh%dv1h-%dz", x + QR_QUIET, y + QR_QUIET, run, run);
            x += run - 1;
        }
    }
    rc |= buf_append_str(out, "\"/></svg>");
    QRcode_free(q);
    return rc ? -1 : 0;
}
