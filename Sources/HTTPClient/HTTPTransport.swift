/// Something that performs HTTP requests. ``CurlHTTPClient`` is the real one; tests substitute fakes.
public protocol HTTPTransport: Sendable {
    /// Performs one request. Throws only when no HTTP response was received.
    func perform(_ request: HTTPRequest) async throws(HTTPClientError) -> HTTPResponse
}

extension CurlHTTPClient: HTTPTransport {}
