#include "CGnuTLSShim.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

void pe_gnutls_free(void *pointer) {
    gnutls_free(pointer);
}

int pe_hmac_sha256(const void *key, size_t key_size, const void *data, size_t data_size, void *digest) {
    return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_size, data, data_size, digest);
}

int pe_random_key(void *buffer, size_t size) {
    return gnutls_rnd(GNUTLS_RND_KEY, buffer, size);
}
