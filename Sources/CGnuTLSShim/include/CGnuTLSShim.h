#ifndef PREFECT_EXPORTER_CGNUTLSSHIM_H
#define PREFECT_EXPORTER_CGNUTLSSHIM_H

/*
 * Why this shim exists: two GnuTLS calls Swift cannot make directly. gnutls_free is not a
 * function but a mutable global function pointer (plus a macro), which Swift 6 refuses to
 * touch from concurrent code; and the HMAC and random-number calls live in
 * <gnutls/crypto.h>, which the CGnuTLS system-library module does not include.
 */

#include <stddef.h>

/* Frees memory that GnuTLS allocated and handed to the caller (gnutls_free, not libc's free). */
void pe_gnutls_free(void *pointer);

/*
 * Crypto helpers for basic auth. Both return 0 on success and a negative GnuTLS error code
 * otherwise.
 *
 * pe_hmac_sha256 writes the 32-byte HMAC-SHA-256 of `data` under `key` to `digest`.
 * pe_random_key fills `buffer` with `size` bytes from GnuTLS's key-grade generator.
 */
int pe_hmac_sha256(const void *key, size_t key_size, const void *data, size_t data_size, void *digest);
int pe_random_key(void *buffer, size_t size);

#endif
