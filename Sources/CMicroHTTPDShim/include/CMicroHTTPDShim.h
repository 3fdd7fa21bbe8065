#ifndef PREFECT_EXPORTER_CMICROHTTPDSHIM_H
#define PREFECT_EXPORTER_CMICROHTTPDSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/*
 * Non-variadic wrappers around libmicrohttpd's variadic calls, which Swift
 * cannot call directly.
 */

/*
 * Starts a daemon. Every option is passed through `options`, an array
 * terminated by an item whose option is MHD_OPTION_END (it is handed to MHD
 * as MHD_OPTION_ARRAY). `options` may be NULL.
 */
struct MHD_Daemon *pe_mhd_start_daemon(unsigned int flags,
                                       uint16_t port,
                                       MHD_AccessHandlerCallback handler,
                                       void *handler_cls,
                                       const struct MHD_OptionItem *options);

/*
 * An MHD_OPTION_EXTERNAL_LOGGER item for the options array: the option takes
 * a function pointer and a context pointer, and MHD_OptionItem stores the
 * function pointer in its integer field.
 */
struct MHD_OptionItem pe_mhd_option_external_logger(MHD_LogCallback logger, void *logger_cls);

/* The port of the daemon's listen socket (the real one when started on port 0), or 0 if unknown. */
uint16_t pe_mhd_get_daemon_bind_port(struct MHD_Daemon *daemon);

/* The number of connections the daemon currently handles. */
unsigned int pe_mhd_get_daemon_current_connections(struct MHD_Daemon *daemon);

/*
 * The GnuTLS session (a gnutls_session_t) of a connection to a daemon started with
 * MHD_USE_TLS, or NULL (plain HTTP, or unknown). MHD_get_connection_info is variadic.
 */
void *pe_mhd_get_connection_tls_session(struct MHD_Connection *connection);

/*
 * GnuTLS crypto helpers for basic auth (<gnutls/crypto.h> is not part of the CGnuTLS module).
 * Both return 0 on success and a negative GnuTLS error code otherwise.
 *
 * pe_hmac_sha256 writes the 32-byte HMAC-SHA-256 of `data` under `key` to `digest`.
 * pe_random_key fills `buffer` with `size` bytes from GnuTLS's key-grade generator.
 */
int pe_hmac_sha256(const void *key, size_t key_size, const void *data, size_t data_size, void *digest);
int pe_random_key(void *buffer, size_t size);

#endif
