/*
 * fuzz_ws.c — libFuzzer target for what a WebSocket client sends after the
 * upgrade: frame headers (lengths in 7/16/64 bits, mask bit, reserved bits,
 * opcodes), masked and unmasked payloads, fragmented messages
 * (continuations, control frames between fragments), pings, pongs, close
 * frames with and without code/reason, garbage.  push/ws.c owns the socket
 * and hands the bytes to wslay as they arrive; the bytes are cut into pieces
 * of varied sizes (fuzz_server.h), so frames also arrive split at every
 * possible place.  The real server on loopback (fuzz_server.h), both
 * streams: /ws (the seed's demo stream) and /ws/jobs.
 *
 * Input: byte 0 seeds the pieces, byte 1 bit 0 picks /ws/jobs over /ws;
 * the rest follows a valid upgrade request on the same connection.
 *
 * Checks, beyond "no crash / no sanitizer report / no leak", on what the
 * server sends back: a 101, then only well-formed server frames (FIN set,
 * no reserved bits, not masked, a known opcode, control frames of at most
 * 125 bytes, text frames that are JSON documents), and the server closes
 * the connection once the client is gone.
 */
#include "fuzz_server.h" /* first: it asks for _GNU_SOURCE (memmem) */

#include <jansson.h>
#include <string.h>

static const char upgrade_demo[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n";
static const char upgrade_jobs[] = "GET /ws/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n";

static void check_frames(const unsigned char *p, size_t n)
{
    while (n >= 2) {
        unsigned fin = p[0] & 0x80, rsv = p[0] & 0x70, op = p[0] & 0x0F, masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7F;
        size_t hdr = 2;
        FUZZ_CHECK(fin && !rsv && !masked);
        FUZZ_CHECK(op == 0x1 || op == 0x8 || op == 0x9 || op == 0xA);
        if (len == 126) {
            if (n < 4)
                return;
            len = (uint64_t)p[2] << 8 | p[3];
            FUZZ_CHECK(len >= 126); /* shortest form (RFC 6455 5.2) */
            hdr = 4;
        } else if (len == 127) {
            if (n < 10)
                return;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            FUZZ_CHECK(len > 0xFFFF && len >> 63 == 0);
            hdr = 10;
        }
        if (op >= 0x8)
            FUZZ_CHECK(len <= 125);
        if (n - hdr < len)
            return; /* the client hung up before the rest arrived */
        if (op == 0x1) {
            json_t *j = json_loadb((const char *)p + hdr, (size_t)len, 0, NULL);
            FUZZ_CHECK(j != NULL);
            json_decref(j);
        }
        if (op == 0x8)
            FUZZ_CHECK(len != 1); /* a close payload is empty or starts with a 2-byte code */
        p += hdr + len;
        n -= hdr + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fz_server *f = fz_server_get(FZ_OPEN);
    const char *up = data[1] & 1 ? upgrade_jobs : upgrade_demo;
    size_t up_len = strlen(up);
    uint8_t *msg = malloc(up_len + size - 2);
    FUZZ_CHECK(msg != NULL);
    memcpy(msg, up, up_len);
    memcpy(msg + up_len, data + 2, size - 2);
    char *out = NULL;
    size_t n = 0;
    bool reset = false;
    fz_exchange(f, msg, up_len + size - 2, up_len, data[0], &out, &n, &reset);
    free(msg);

    /* After a reset (the server closed with input unread) the answer may be
     * gone entirely; otherwise the upgrade went through. */
    static const char ok[] = "HTTP/1.1 101 ";
    FUZZ_CHECK(reset || (n >= sizeof ok - 1 && memcmp(out, ok, sizeof ok - 1) == 0));
    if (n < sizeof ok - 1 || memcmp(out, ok, sizeof ok - 1) != 0) {
        free(out);
        fz_reset_jobs(f);
        return 0;
    }
    const char *hend = memmem(out, n, "\r\n\r\n", 4);
    if (hend)
        check_frames((const unsigned char *)hend + 4, n - (size_t)(hend + 4 - out));
    free(out);
    fz_reset_jobs(f);
    return 0;
}
