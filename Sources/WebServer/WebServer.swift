public import Logging
import CMicroHTTPD
import CMicroHTTPDShim
import Glibc
import Locking

///
/// The server runs on its own thread pool from ``init(configuration:handler:logger:)`` until
/// ``stop()`` (or until it is deinitialized). The handler runs on those threads, concurrently.
public final class WebServer: Sendable {

    /// The port the server listens on; the real one when the configuration asked for port 0.
    public let port: Int
    /// The parsed listen address.
    public let listenAddress: ListenAddress

    private let logger: Logger
    /// The running daemon and the context its callbacks use; nil once stopped.
    private let running: LockedValue<(daemon: OpaquePointer, context: Unmanaged<ServerContext>)?>

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
        self.running = LockedValue((started, context))
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
        running.withLock { running in
            guard let daemon = running?.daemon else { return 0 }
            return Int(pe_mhd_get_daemon_current_connections(daemon))
        }
    }

    /// Closes the listen socket and every connection, and waits for the server's threads to end.
    /// Calling it again does nothing. Must not be called from a request handler.
    public func stop() {
        let stopped = running.withLock { running in
            defer { running = nil }
            return running
        }
        guard let (daemon, context) = stopped else { return }
        MHD_stop_daemon(daemon)
        context.release()
        logger.debug("Web server stopped", metadata: ["address": "\(listenAddress)"])
    }
}
