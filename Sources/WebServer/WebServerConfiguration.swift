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

