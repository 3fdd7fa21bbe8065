import Logging
import Locking

/// What the callbacks need; retained by the server while libmicrohttpd runs.
final class ServerContext: Sendable {
    let handler: any RequestHandler
    let logger: Logger
    /// Client certificate and basic auth checks and extra headers; nil without a web config.
    let gate: SecurityGate?
    /// The TLS C strings handed to libmicrohttpd, kept (and the key wiped when released) until the server stops.
    let tlsStrings: TLSStrings?
    /// Whether the server is still starting, and the first message libmicrohttpd logged meanwhile.
    private let startup = LockedValue((starting: true, firstMessage: String?.none))

    init(handler: any RequestHandler, logger: Logger, gate: SecurityGate? = nil, tlsStrings: TLSStrings? = nil) {
        self.handler = handler
        self.logger = logger
        self.gate = gate
        self.tlsStrings = tlsStrings
    }

    /// The first message libmicrohttpd logged while starting, which says why it failed.
    var startupMessage: String? {
        startup.withLock { $0.firstMessage }
    }

    /// Called once libmicrohttpd has started: later messages are not startup failures.
    func finishStartup() {
        startup.withLock { $0.starting = false }
    }

    /// Logs a message from libmicrohttpd at a level that fits it.
    func log(_ message: String) {
        let isStarting = startup.withLock { startup in
            if startup.starting, startup.firstMessage == nil { startup.firstMessage = message }
            return startup.starting
        }
        if isStarting {
            logger.error("libmicrohttpd: \(message)")
        } else if Self.clientCausedPrefixes.contains(where: { message.hasPrefix($0) }) {
            logger.debug("libmicrohttpd: \(message)")
        } else if message.hasPrefix("Server reached connection limit") {
            logger.warning("libmicrohttpd: \(message)", metadata: ["hint": "raise --web.max-connections"])
        } else {
            logger.error("libmicrohttpd: \(message)")
        }
    }

    /// Messages about one client's connection or malformed request: routine on a server
    /// reachable by anything, so logged at debug only.
    private static let clientCausedPrefixes = [
        "Socket has been disconnected",
        "Connection socket is closed when reading request",
        "Connection was closed by remote side",
        "Failed to send data in request",
        "Failed to send the response",
        "Failed to send the chunked response",
        "Failed to send the footers",
        "Error processing request (HTTP response code is",
        "Received HTTP/1.1 request without",
        "Too large value of 'Content-Length'",
        "Failed to parse `Content-Length'",
        "Not enough memory in pool to",
        "Setting ",  // a socket option on a client's socket, usually one already gone
        "Failed to push the data from buffers",
        // A failed TLS handshake (wrong CA, TLS version, plain HTTP on an HTTPS port); libmicrohttpd
        // 0.9.75 logs every handshake failure with this text.
        "Error: received handshake message out of context",
    ]
}
