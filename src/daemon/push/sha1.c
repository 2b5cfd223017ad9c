/*
 * sha1.c — SHA-1 (FIPS 180-4, section 6.1), for the WebSocket handshake
 * only: Sec-WebSocket-Accept = base64(SHA-1(key + RFC 6455 GUID)).
 *
 * Why our own: libh2o 2.2.5 declares h2o_websocket_create_accept_key() in
 * h2o/websocket.h but Debian's library does not export it (it is static in
 * that release), and linking libcrypto directly for 60 bytes of hashing per
 * connection is not worth a build dependency.  Not for anything where
 * SHA-1's weakness matters.
 */
#include <stdint.h>
#include <string.h>

#include "push_int.h"

static uint32_t gvd_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void gvd_sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 80; t++)
        w[t] = gvd_rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20)
            f = (b & c) | (~b & d), k = 0x5a827999;
        else if (t < 40)
            f = b ^ c ^ d, k = 0x6ed9eba1;
        else if (t < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
        else
            f = b ^ c ^ d, k = 0xca62c1d6;
        uint32_t tmp = gvd_rol(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = gvd_rol(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void gvd_sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const unsigned char *p = data;
    size_t left = len;
    for (; left >= 64; p += 64, left -= 64)
        gvd_sha1_block(h, p);
    /* padding: 0x80, zeros, the bit length as 64-bit big endian */
    unsigned char tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t n = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[n - 1 - i] = (unsigned char)(bits >> (8 * i));
    gvd_sha1_block(h, tail);
    if (n == 128)
        gvd_sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

void gvd_ws_accept_key(char out[29], const char *client_key)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char src[24 + sizeof guid - 1];
    unsigned char digest[20];
    memcpy(src, client_key, 24);
    memcpy(src + 24, guid, sizeof guid - 1);
    gvd_sha1(src, sizeof src, digest);
    h2o_base64_encode(out, digest, sizeof digest, 0); /* 28 characters + NUL */
}
