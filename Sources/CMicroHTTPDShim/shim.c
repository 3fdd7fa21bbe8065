#include "CMicroHTTPDShim.h"

#include <stddef.h>

struct MHD_Daemon *pe_mhd_start_daemon(unsigned int flags,
                                       uint16_t port,
                                       MHD_AccessHandlerCallback handler,
                                       void *handler_cls,
                                       const struct MHD_OptionItem *options) {
    static const struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_ARRAY, options != NULL ? options : no_options,
                            MHD_OPTION_END);
}

struct MHD_OptionItem pe_mhd_option_external_logger(MHD_LogCallback logger, void *logger_cls) {
    struct MHD_OptionItem item = {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)logger, logger_cls};
    return item;
}

uint16_t pe_mhd_get_daemon_bind_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info != NULL ? info->port : 0;
}

unsigned int pe_mhd_get_daemon_current_connections(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info != NULL ? info->num_connections : 0;
}

void *pe_mhd_get_connection_tls_session(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return info != NULL ? info->tls_session : NULL;
}
