/// An HTTP request for ``CurlHTTPClient``.
public struct HTTPRequest: Sendable {
    /// The request method. Only what the exporter needs.
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
    }

    public var method: Method
    /// The absolute URL, `http` or `https`.
    public var url: String
    /// Header lines, in order. Names are sent as given.
    public var headers: [(name: String, value: String)]
    /// The request body, for POST.
    public var body: [UInt8]?

    public init(method: Method, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// An HTTP response: status, headers and the (already decompressed) body.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header values by lower-cased name. A repeated header keeps its last value.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Bytes received on the wire for the body, before decompression.
    public var wireBytes: Int

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = [], wireBytes: Int? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.wireBytes = wireBytes ?? body.count
    }

    /// The value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        headers[name.lowercased()]
    }
}

/// Why a request got no HTTP response.
public struct HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broad class of failure, stable enough to use as a metric label.
    public enum Kind: String, Sendable, Equatable {
        case timeout
        case connectionError = "connection_error"
        case tlsError = "tls_error"
        case responseTooLarge = "response_too_large"
        case invalidRequest = "invalid_request"
        case other = "error"
    }

    public var kind: Kind
    /// What libcurl said, for logs.
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Settings shared by every request of one client.
public struct HTTPClientConfiguration: Sendable {
    /// Time allowed to establish a TCP (and TLS) connection.
    public var connectTimeout: Duration
    /// Time allowed for a whole request, from connect to the last byte.
    public var requestTimeout: Duration
    /// A PEM file of CA certificates to verify servers with, instead of the system's.
    public var caFile: String?
    /// Skip TLS verification. For tests against self-signed servers only.
    public var insecureSkipVerify: Bool
    /// Bodies larger than this (after decompression) fail with ``HTTPClientError/Kind/responseTooLarge``.
    public var maxResponseBytes: Int
    /// Sent as `User-Agent`.
    public var userAgent: String

    public init(
        connectTimeout: Duration = .seconds(5),
        requestTimeout: Duration = .seconds(10),
        caFile: String? = nil,
        insecureSkipVerify: Bool = false,
        maxResponseBytes: Int = 32 << 20,
        userAgent: String = "prefect-exporter"
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
    }
}

extension Duration {
    /// Whole milliseconds, at least 1, for libcurl's `_MS` options.
    var clampedMilliseconds: Int {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int(max(1, min(milliseconds, Int64(Int32.max))))
    }
}
