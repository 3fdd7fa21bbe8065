/*
 * static_mhd: the "physical limit" for scripts/bench. A minimal libmicrohttpd server that
 * listens on 127.0.0.1 and answers every request with the same bytes from a static buffer (MHD_RESPMEM_PERSISTENT: no
 * copy, no allocation per request), with the web server settings of prefect-exporter
 * (Sources/WebServer/WebServer.swift): internal polling thread, MHD_USE_AUTO (epoll on Linux),
 * a pool of 2 threads, 512 connections, 10 s timeout, 32 KiB per connection, and the response
 * queued on the last call of the access handler so the connection stays alive.
 *
 *   static_mhd PORT PLAIN_FILE [GZIP_FILE]
 *
 * With GZIP_FILE, requests whose Accept-Encoding mentions gzip get those bytes with
 * Content-Encoding: gzip, the others get PLAIN_FILE; no q-value parsing (that is the point:
 * it does the least a server can do). Stops on SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Response *plain_response;
static struct MHD_Response *gzip_response;
static volatile sig_atomic_t stop_requested;
static int awaiting_end;  /* its address marks a request whose headers were seen */

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static char *read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) { perror(path); exit(1); }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *buffer = malloc(length > 0 ? (size_t)length : 1);
    if (buffer == NULL || fread(buffer, 1, (size_t)length, file) != (size_t)length) { perror(path); exit(1); }
    fclose(file);
    *size = (size_t)length;
    return buffer;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **request_state) {
    (void)cls; (void)url; (void)method; (void)version; (void)upload_data;
    if (*request_state == NULL) {
        *request_state = &awaiting_end;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *response = plain_response;
    if (gzip_response != NULL) {
        const char *accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Accept-Encoding");
        if (accept != NULL && strstr(accept, "gzip") != NULL) response = gzip_response;
    }
    return MHD_queue_response(connection, MHD_HTTP_OK, response);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s PORT PLAIN_FILE [GZIP_FILE]\n", argv[0]);
        return 2;
    }
    size_t size;
    char *plain = read_file(argv[2], &size);
    plain_response = MHD_create_response_from_buffer(size, plain, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(plain_response, "Content-Type", CONTENT_TYPE);
    if (argc == 4) {
        MHD_add_response_header(plain_response, "Vary", "Accept-Encoding");
        char *gzip = read_file(argv[3], &size);
        gzip_response = MHD_create_response_from_buffer(size, gzip, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(gzip_response, "Content-Type", CONTENT_TYPE);
        MHD_add_response_header(gzip_response, "Content-Encoding", "gzip");
        MHD_add_response_header(gzip_response, "Vary", "Accept-Encoding");
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)atoi(argv[1]));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  /* 127.0.0.1 only */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, (uint16_t)atoi(argv[1]), NULL, NULL, handle, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)511,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
        MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "static_mhd: cannot start on port %s\n", argv[1]);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("static_mhd: serving %s%s%s on port %s\n", argv[2], argc == 4 ? " and " : "", argc == 4 ? argv[3] : "", argv[1]);
    fflush(stdout);
    while (!stop_requested) pause();
    MHD_stop_daemon(daemon);
    return 0;
}
