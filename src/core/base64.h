/* base64.h: RFC 4648 base64, the standard alphabet. Used by SMTP AUTH,
 * IMAP AUTHENTICATE, OpenPGP armour and MIME decoding. */
#ifndef CM_CORE_BASE64_H
#define CM_CORE_BASE64_H

#include <stddef.h>

/* The 6-bit value of an alphabet character, or -1. */
int base64_value(unsigned char c);
/* Strict decoding: length a multiple of 4, padding only at the end, no
 * whitespace. Returns the decoded length, or -1 (bad input or cap too small). */
long base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);
/* Encodes with padding into out (NUL-terminated); the length, or -1 if cap
 * is too small. */
long base64_encode(const unsigned char *in, size_t len, char *out, size_t cap);

#endif
