#ifndef PREFECT_EXPORTER_CMICROHTTPDSHIM_H
#define PREFECT_EXPORTER_CMICROHTTPDSHIM_H

/*
 * Why this shim exists: libmicrohttpd starts daemons and answers info queries through
 * variadic C functions, which Swift cannot call, and one option stores a function pointer
 * in an integer field, which Swift cannot build. These are non-variadic wrappers.
 */

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

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

#endif
