public import Logging
import CMicroHTTPD
import CMicroHTTPDShim
#if canImport(Glibc)
import Glibc
#endif

/// How the web server listens and how much it accepts.
public struct WebServerConfiguration: Sendable, Equatable {
    /// Where to listen: `:14200` (every interface, dual stack), `127.0.0.1:14200`, `[::1]:14200`, or port 0 for any free port.
    public var listenAddress: String
    /// Threads that serve connections; each runs its own epoll (or poll) loop.
    public var threadPoolSize: Int
    /// Connections accepted at once, over all threads (`--web.max-connections`).
    public var maxConnections: Int
    /// A connection that sends or receives nothing for this long is closed, so slow or stuck
    /// clients cannot hold connections forever. Rounded up to whole seconds.
    public var connectionTimeout: Duration
    /// Memory per connection for the request line and headers; larger requests get an error status.
    public var connectionMemoryLimit: Int
    /// Length of the kernel's queue of connections not yet accepted.
    public var listenBacklog: Int
    /// TLS, client certificates, basic auth and extra headers from `--web.config.file`; nil for
    /// plain HTTP without authentication. See ``WebSecurity/load(configFile:)``.
    public var security: WebSecurity?

    /// Creates a configuration; every parameter has the exporter's default.
    public init(
        listenAddress: String = ":14200",
        threadPoolSize: Int = 2,
        maxConnections: Int = 512,
        connectionTimeout: Duration = .seconds(10),
        connectionMemoryLimit: Int = 32 * 1024,
        listenBacklog: Int = 511,
        security: WebSecurity? = nil
    ) {
        self.listenAddress = listenAddress
        self.threadPoolSize = threadPoolSize
        self.maxConnections = maxConnections
        self.connectionTimeout = connectionTimeout
        self.connectionMemoryLimit = connectionMemoryLimit
        self.listenBacklog = listenBacklog
        self.security = security
    }

    /// The timeout in whole seconds, rounded up.
    var connectionTimeoutSeconds: Int {
        let (seconds, attoseconds) = connectionTimeout.components
        return Int(clamping: seconds) + (attoseconds > 0 ? 1 : 0)
    }

    /// Checks every value, including that the listen address parses, without binding anything;
    /// ``WebServer`` runs the same checks when it starts. Lets a CLI reject bad flags up front.
    public func validate() throws(WebServerError) {
        _ = try ListenAddress(parsing: listenAddress)
        func invalid(_ message: String) -> WebServerError {
            WebServerError(kind: .invalidConfiguration, description: message)
        }
        guard (1...256).contains(threadPoolSize) else {
            throw invalid("web server thread pool size must be between 1 and 256, got \(threadPoolSize)")
        }
        guard maxConnections >= threadPoolSize, maxConnections <= 1_000_000 else {
            throw invalid("--web.max-connections must be between \(threadPoolSize) and 1000000, got \(maxConnections)")
        }
        guard connectionTimeout > .zero, connectionTimeoutSeconds <= 86_400 else {
            throw invalid("web connection timeout must be between 1s and 24h, got \(connectionTimeout)")
        }
        guard (4096...16 * 1024 * 1024).contains(connectionMemoryLimit) else {
            throw invalid("web connection memory limit must be between 4096 and 16777216 bytes, got \(connectionMemoryLimit)")
        }
        guard (1...65_535).contains(listenBacklog) else {
            throw invalid("web listen backlog must be between 1 and 65535, got \(listenBacklog)")
        }
    }
}

/// An HTTP server on libmicrohttpd that answers every request with a ``RequestHandler``.
///
/// The server runs on its own thread pool from ``init(configuration:handler:logger:)`` until
/// ``stop()`` (or until it is deinitialized). The handler runs on those threads, concurrently.
public final class WebServer: @unchecked Sendable {
    // Safety: `daemon` and `context` are only read and written under `lock`.

    /// The port the server listens on; the real one when the configuration asked for port 0.
    public let port: Int
    /// The parsed listen address.
    public let listenAddress: ListenAddress

    private let logger: Logger
    private let lock = MutexLock()
    private var daemon: OpaquePointer?
    private var context: Unmanaged<ServerContext>?

    /// Binds the listen address and starts serving.
    ///
    /// - Throws: ``WebServerError`` when the configuration is out of range, the address cannot
    ///   be parsed or resolved, it is already in use, or libmicrohttpd fails to start.
    public init(
        configuration: WebServerConfiguration,
        handler: some RequestHandler,
        logger: Logger = Logger(label: "prefect-exporter.web")
    ) throws(WebServerError) {
        try configuration.validate()
        let address = try ListenAddress(parsing: configuration.listenAddress)
        let socket = try ListeningSocket.open(address, backlog: Int32(configuration.listenBacklog))
        defer { socket.close() }  // libmicrohttpd gets its own descriptor of the socket
        let daemonSocket = try socket.duplicate(address: address)

        let security = configuration.security
        let tlsStrings = security?.tls.map(TLSStrings.init)
        let context = Unmanaged.passRetained(
            ServerContext(handler: handler, logger: logger, gate: security.map(SecurityGate.init), tlsStrings: tlsStrings))
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_AUTO.rawValue | MHD_USE_ITC.rawValue
            | MHD_USE_ERROR_LOG.rawValue
        if socket.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        if tlsStrings != nil { flags |= MHD_USE_TLS.rawValue }
        var options: [MHD_OptionItem] = [
            // The logger goes first so that libmicrohttpd logs nothing to stderr while it parses the rest.
            // (A literal closure: a stored property of this C function type crashes the 6.3 compiler
            // when a test module deserializes it.)
            pe_mhd_option_external_logger({ WebServer.logMessage($0, $1, $2) }, context.toOpaque()),
            MHD_OptionItem(option: .LISTEN_SOCKET, value: Int(daemonSocket), ptr_value: nil),
            MHD_OptionItem(option: .CONNECTION_LIMIT, value: configuration.maxConnections, ptr_value: nil),
            MHD_OptionItem(option: .CONNECTION_TIMEOUT, value: configuration.connectionTimeoutSeconds, ptr_value: nil),
            MHD_OptionItem(option: .CONNECTION_MEMORY_LIMIT, value: configuration.connectionMemoryLimit, ptr_value: nil),
        ]
        if let tlsStrings {
            // libmicrohttpd reads these C strings while starting; the context keeps them until stop().
            options.append(MHD_OptionItem(option: .HTTPS_MEM_CERT, value: 0, ptr_value: tlsStrings.certificate.pointer))
            options.append(MHD_OptionItem(option: .HTTPS_MEM_KEY, value: 0, ptr_value: tlsStrings.key.pointer))
            options.append(MHD_OptionItem(option: .HTTPS_PRIORITIES, value: 0, ptr_value: tlsStrings.priorities.pointer))
            if let trust = tlsStrings.trust {
                options.append(MHD_OptionItem(option: .HTTPS_MEM_TRUST, value: 0, ptr_value: trust.pointer))
            }
        }
        if configuration.threadPoolSize > 1 {
            // libmicrohttpd warns about a pool of one; without the option it runs one thread.
            options.append(MHD_OptionItem(option: .THREAD_POOL_SIZE, value: configuration.threadPoolSize, ptr_value: nil))
        }
        options.append(MHD_OptionItem(option: .END, value: 0, ptr_value: nil))
        let started = options.withUnsafeBufferPointer { items in
            pe_mhd_start_daemon(flags, 0, WebServer.accessHandlerCallback, context.toOpaque(), items.baseAddress)
        }
        guard let started else {
            let reason = context.takeUnretainedValue().startupMessage ?? "libmicrohttpd failed to start"
            context.release()
            if socket.isStillOpen(daemonSocket) { close(daemonSocket) }
            let error = WebServerError(kind: .startFailed, description: "cannot listen on \(address): \(reason)")
            logger.error("Cannot start the web server", metadata: ["error": "\(error)"])
            throw error
        }
        context.takeUnretainedValue().finishStartup()
        let boundPort = pe_mhd_get_daemon_bind_port(started)
        self.port = Int(boundPort != 0 ? boundPort : socket.port)
        self.listenAddress = address
        self.logger = logger
        self.daemon = started
        self.context = context
        var metadata: Logger.Metadata = [
            "address": "\(address)", "port": "\(port)", "threads": "\(configuration.threadPoolSize)",
            "tls": "\(security?.isTLSEnabled ?? false)",
        ]
        if let security {
            metadata["web_config"] = "\(security.configFile)"
            metadata["client_auth"] = "\(security.tls?.clientAuth.rawValue ?? "none")"
            metadata["basic_auth"] = "\(!security.config.basicAuthUsers.isEmpty)"
        }
        logger.info("Listening on \(address)", metadata: metadata)
        if let security, !security.config.basicAuthUsers.isEmpty, !security.isTLSEnabled {
            logger.warning(
                "Basic auth is on without TLS: passwords cross the network in clear text",
                metadata: ["hint": "add tls_server_config to \(security.configFile)"])
        }
    }

    /// Binds the listen address and starts serving with a closure as the handler.
    public convenience init(
        configuration: WebServerConfiguration,
        logger: Logger = Logger(label: "prefect-exporter.web"),
        handler: @escaping @Sendable (Request) -> Response
    ) throws(WebServerError) {
        try self.init(configuration: configuration, handler: ClosureRequestHandler(handler), logger: logger)
    }

    deinit {
        stop()
    }

    /// The number of connections open right now.
    public var currentConnections: Int {
        lock.lock()
        defer { lock.unlock() }
        guard let daemon else { return 0 }
        return Int(pe_mhd_get_daemon_current_connections(daemon))
    }

    /// Closes the listen socket and every connection, and waits for the server's threads to end.
    /// Calling it again does nothing. Must not be called from a request handler.
    public func stop() {
        lock.lock()
        let daemon = self.daemon
        let context = self.context
        self.daemon = nil
        self.context = nil
        lock.unlock()
        guard let daemon else { return }
        MHD_stop_daemon(daemon)
        context?.release()
        logger.debug("Web server stopped", metadata: ["address": "\(listenAddress)"])
    }

    // MARK: - libmicrohttpd callbacks (static, so not isolated to any actor)

    /// Per-request state, kept by libmicrohttpd in the request's context pointer (nil on the first call).
    private static var awaitingEndMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 1) }
    private static var respondedMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 2) }

    // C function pointers must be formed from literal closures; these forward to the static funcs below.
    private static let accessHandlerCallback: MHD_AccessHandlerCallback = {
        WebServer.handleAccess($0, $1, $2, $3, $4, $5, $6, $7)
    }
    private static let headerIteratorCallback: MHD_KeyValueIterator = { WebServer.collectHeader($0, $1, $2, $3) }
    private static let releaseBodyCallback: MHD_ContentReaderFreeCallback = { WebServer.releaseBody($0) }

    /// Request bodies up to this size are read and thrown away, which keeps the connection
    /// usable; a larger or chunked body gets its response at once and the connection closed.
    static let discardableBodySize = 64 * 1024

    /// libmicrohttpd's access handler. It is called once when the headers have arrived, then
    /// again for each chunk of a request body, and once more at the end of the request.
    ///
    /// Requests are answered on that last call: libmicrohttpd closes the connection after a
    /// response queued on the first call, and keep-alive matters to Prometheus. Body data is
    /// discarded. A chunked body, or one larger than ``discardableBodySize``, is not worth
    /// reading: that request is answered on the first call instead, and the connection closed.
    private static func handleAccess(
        _ cls: UnsafeMutableRawPointer?,
        _ connection: OpaquePointer?,
        _ url: UnsafePointer<CChar>?,
        _ method: UnsafePointer<CChar>?,
        _ version: UnsafePointer<CChar>?,
        _ uploadData: UnsafePointer<CChar>?,
        _ uploadDataSize: UnsafeMutablePointer<Int>?,
        _ requestState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> MHD_Result {
        guard let cls, let connection, let requestState else { return .NO }
        let pendingUpload = uploadDataSize?.pointee ?? 0
        switch requestState.pointee {
        case nil:
            let isChunked = MHD_lookup_connection_value(connection, .HEADER_KIND, "Transfer-Encoding") != nil
            let declaredLength = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length")
                .map { Int(String(cString: $0)) ?? Int.max } ?? 0
            guard isChunked || declaredLength > discardableBodySize else {
                requestState.pointee = awaitingEndMarker
                return .YES
            }
            requestState.pointee = respondedMarker
            return respond(cls, connection, url, method, headers(of: connection))
        case awaitingEndMarker where pendingUpload == 0:
            requestState.pointee = respondedMarker
            return respond(cls, connection, url, method, headers(of: connection))
        default:
            uploadDataSize?.pointee = 0
            return .YES
        }
    }

    private static func respond(
        _ cls: UnsafeMutableRawPointer,
        _ connection: OpaquePointer,
        _ url: UnsafePointer<CChar>?,
        _ method: UnsafePointer<CChar>?,
        _ headers: [HTTPHeader]
    ) -> MHD_Result {
        let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
        let request = Request(
            method: method.map { String(cString: $0) } ?? "",
            path: url.map { String(cString: $0) } ?? "/",
            headers: headers)
        guard let gate = context.gate else {
            return queue(context.handler.respond(to: request), on: connection, logger: context.logger)
        }
        let tlsSession = context.tlsStrings == nil ? nil : pe_mhd_get_connection_tls_session(connection)
        var response = gate.deny(request, tlsSession: tlsSession, logger: context.logger) ?? context.handler.respond(to: request)
        response.headers.append(contentsOf: gate.headers)
        return queue(response, on: connection, logger: context.logger)
    }

    private static func headers(of connection: OpaquePointer) -> [HTTPHeader] {
        var headers: [HTTPHeader] = []
        withUnsafeMutablePointer(to: &headers) { pointer in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, WebServer.headerIteratorCallback, pointer)
        }
        return headers
    }

    private static func collectHeader(
        _ cls: UnsafeMutableRawPointer?,
        _ kind: MHD_ValueKind,
        _ key: UnsafePointer<CChar>?,
        _ value: UnsafePointer<CChar>?
    ) -> MHD_Result {
        guard let cls, let key else { return .YES }
        let header = HTTPHeader(String(cString: key), value.map { String(cString: $0) } ?? "")
        cls.assumingMemoryBound(to: [HTTPHeader].self).pointee.append(header)
        return .YES
    }

    private static func queue(_ response: Response, on connection: OpaquePointer, logger: Logger) -> MHD_Result {
        let body = response.body
        let retained = Unmanaged.passRetained(body)
        guard
            let mhdResponse = MHD_create_response_from_buffer_with_free_callback_cls(
                body.count, body.baseAddress, WebServer.releaseBodyCallback, retained.toOpaque())
        else {
            retained.release()
            logger.error("Cannot create an HTTP response (out of memory?)")
            return .NO
        }
        defer { MHD_destroy_response(mhdResponse) }
        var headers = [HTTPHeader("Content-Type", response.contentType)]
        headers.append(contentsOf: response.headers)
        for header in headers where MHD_add_response_header(mhdResponse, header.name, header.value) != .YES {
            logger.error("Cannot add an HTTP response header", metadata: ["header": "\(header.name)"])
            return .NO
        }
        guard let status = UInt32(exactly: response.status), (100...599).contains(status) else {
            logger.error("Invalid HTTP status in a response", metadata: ["status": "\(response.status)"])
            return .NO
        }
        return MHD_queue_response(connection, status, mhdResponse)
    }

    /// Called by libmicrohttpd when it no longer needs a response's buffer.
    private static func releaseBody(_ cls: UnsafeMutableRawPointer?) {
        guard let cls else { return }
        Unmanaged<ResponseBody>.fromOpaque(cls).release()
    }

    /// libmicrohttpd's error logger: formats the message and logs it.
    private static func logMessage(_ cls: UnsafeMutableRawPointer?, _ format: UnsafePointer<CChar>?, _ arguments: CVaListPointer?) {
        guard let cls, let format, let arguments else { return }
        let capacity = 1024
        let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer -> String in
            guard let base = buffer.baseAddress else { return "" }
            guard vsnprintf(base, capacity, format, arguments) >= 0 else { return "" }
            return String(cString: base)
        }
        var message = Substring(text)  // without leading and trailing white space and line ends
        while message.first?.isWhitespace == true { message.removeFirst() }
        while message.last?.isWhitespace == true { message.removeLast() }
        guard !message.isEmpty else { return }
        Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().log(String(message))
    }
}

/// What the callbacks need; retained by the server while libmicrohttpd runs.
private final class ServerContext: @unchecked Sendable {
    // Safety: `starting` and `firstStartupMessage` are only used under `lock`; the rest is immutable.
    let handler: any RequestHandler
    let logger: Logger
    /// Client certificate and basic auth checks and extra headers; nil without a web config.
    let gate: SecurityGate?
    /// The TLS C strings handed to libmicrohttpd, kept (and the key wiped when released) until the server stops.
    let tlsStrings: TLSStrings?
    private let lock = MutexLock()
    private var starting = true
    private var firstStartupMessage: String?

    init(handler: any RequestHandler, logger: Logger, gate: SecurityGate? = nil, tlsStrings: TLSStrings? = nil) {
        self.handler = handler
        self.logger = logger
        self.gate = gate
        self.tlsStrings = tlsStrings
    }

    /// The first message libmicrohttpd logged while starting, which says why it failed.
    var startupMessage: String? {
        lock.lock()
        defer { lock.unlock() }
        return firstStartupMessage
    }

    func finishStartup() {
        lock.lock()
        starting = false
        lock.unlock()
    }

    func log(_ message: String) {
        lock.lock()
        let isStarting = starting
        if isStarting, firstStartupMessage == nil { firstStartupMessage = message }
        lock.unlock()
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

/// A NUL-terminated copy of some bytes for libmicrohttpd, wiped when released.
private final class CStringCopy: @unchecked Sendable {
    // Safety: the memory is written only in init and deinit; libmicrohttpd only reads it.
    let pointer: UnsafeMutableRawPointer
    private let count: Int

    init(_ bytes: some Collection<UInt8>) {
        count = bytes.count + 1
        let memory = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        let buffer = UnsafeMutableBufferPointer(start: memory, count: count)
        _ = buffer.initialize(from: bytes)
        memory[count - 1] = 0
        pointer = UnsafeMutableRawPointer(memory)
    }

    deinit {
        explicit_bzero(pointer, count)
        pointer.deallocate()
    }
}

/// The TLS settings as the C strings libmicrohttpd's options take.
private final class TLSStrings: Sendable {
    let certificate: CStringCopy
    let key: CStringCopy
    let priorities: CStringCopy
    let trust: CStringCopy?

    init(_ material: TLSMaterial) {
        certificate = CStringCopy(material.certificate)
        key = material.key.withUnsafeBytes { CStringCopy($0) }
        priorities = CStringCopy(Array(material.priorities.utf8))
        trust = material.trust.map { CStringCopy($0) }
    }
}
