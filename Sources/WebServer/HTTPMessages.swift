/// One HTTP header field.
public struct HTTPHeader: Sendable, Hashable {
    /// The field name, for example `Content-Encoding`.
    public var name: String
    /// The field value.
    public var value: String

    /// Creates a header field.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What the server knows about a request when it routes it: method, path and headers.
///
/// Request bodies are never read; the server discards them.
public struct Request: Sendable {
    /// The request method as sent, for example `GET`.
    public let method: String
    /// The path, without the query string (libmicrohttpd has already percent-decoded it).
    public let path: String
    /// The header fields in the order received.
    public let headers: [HTTPHeader]

    /// Creates a request.
    public init(method: String, path: String, headers: [HTTPHeader] = []) {
        self.method = method
        self.path = path
        self.headers = headers
    }

    /// The value of a header field, looked up case-insensitively. Repeated fields are joined with `", "`.
    public func header(_ name: String) -> String? {
        var found: [String] = []
        for header in headers where header.name.utf8.count == name.utf8.count && header.name.lowercased() == name.lowercased() {
            found.append(header.value)
        }
        return found.isEmpty ? nil : found.joined(separator: ", ")
    }
}

/// A response: status, content type, any extra headers, and a body that is sent without copying.
public struct Response: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The `Content-Type` header.
    public var contentType: String
    /// Extra headers, for example `Content-Encoding` or `Allow`.
    public var headers: [HTTPHeader]
    /// The body. For `HEAD` requests only its length is sent.
    public var body: ResponseBody

    /// Creates a response.
    public init(status: Int, contentType: String, headers: [HTTPHeader] = [], body: ResponseBody) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }
}

/// Something that answers requests. It is called on libmicrohttpd's threads, concurrently,
/// so it must be fast and must not block.
public protocol RequestHandler: Sendable {
    /// Returns the response to a request.
    func respond(to request: Request) -> Response
}

/// A request handler made of a closure.
public struct ClosureRequestHandler: RequestHandler {
    private let body: @Sendable (Request) -> Response

    /// Wraps a closure.
    public init(_ body: @escaping @Sendable (Request) -> Response) {
        self.body = body
    }

    /// Calls the closure.
    public func respond(to request: Request) -> Response {
        body(request)
    }
}

/// Immutable bytes of a response body in memory that libmicrohttpd reads directly.
///
/// The bytes are copied once, when the body is created; afterwards the same body can be served
/// on any number of connections at once without another copy. Each response that libmicrohttpd
/// queues keeps the body alive until it has been sent.
public final class ResponseBody: @unchecked Sendable {
    // Safety: `start` is written only in init and freed only in deinit; the bytes are never mutated.
    private let start: UnsafeMutablePointer<UInt8>
    /// The number of bytes.
    public let count: Int

    /// Copies the bytes.
    public init(_ bytes: some Collection<UInt8>) {
        let count = bytes.count
        // Allocate at least one byte so that the pointer handed to libmicrohttpd is never null.
        let start = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count, 1))
        let initialized = UnsafeMutableBufferPointer(start: start, count: count).initialize(fromContentsOf: bytes)
        precondition(initialized == count, "collection reported \(count) elements but produced \(initialized)")
        self.start = start
        self.count = count
    }

    /// Copies the UTF-8 encoding of a string.
    public convenience init(_ text: String) {
        self.init(text.utf8)
    }

    deinit {
        start.deallocate()
    }

    /// A copy of the bytes.
    public var bytes: [UInt8] {
        Array(UnsafeBufferPointer(start: start, count: count))
    }

    /// Calls `body` with the bytes, which must not escape the call.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The address of the first byte, for libmicrohttpd, which only reads it, while the body is retained.
    var baseAddress: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(start)
    }
}
