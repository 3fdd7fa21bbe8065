import CMicroHTTPD
import CMicroHTTPDShim
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging

// libmicrohttpd's callbacks: reading a request, asking the handler, queueing the response.

extension WebServer {
    /// Per-request state, kept by libmicrohttpd in the request's context pointer (nil on the first call).
    static var awaitingEndMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 1) }
    static var respondedMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 2) }

    // C function pointers must be formed from literal closures; these forward to the static funcs below.
    static let accessHandlerCallback: MHD_AccessHandlerCallback = {
        WebServer.handleAccess($0, $1, $2, $3, $4, $5, $6, $7)
    }
    static let headerIteratorCallback: MHD_KeyValueIterator = { WebServer.collectHeader($0, $1, $2, $3) }
    static let releaseBodyCallback: MHD_ContentReaderFreeCallback = { WebServer.releaseBody($0) }

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
    static func handleAccess(
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

    static func respond(
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

    static func headers(of connection: OpaquePointer) -> [HTTPHeader] {
        var headers: [HTTPHeader] = []
        withUnsafeMutablePointer(to: &headers) { pointer in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, WebServer.headerIteratorCallback, pointer)
        }
        return headers
    }

    static func collectHeader(
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

    static func queue(_ response: Response, on connection: OpaquePointer, logger: Logger) -> MHD_Result {
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
    static func releaseBody(_ cls: UnsafeMutableRawPointer?) {
        guard let cls else { return }
        Unmanaged<ResponseBody>.fromOpaque(cls).release()
    }

    /// libmicrohttpd's error logger: formats the message and logs it.
    static func logMessage(_ cls: UnsafeMutableRawPointer?, _ format: UnsafePointer<CChar>?, _ arguments: CVaListPointer?) {
        guard let cls, let format, let arguments else { return }
        let capacity = 1024
        let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer -> String in
            guard let base = buffer.baseAddress else { return "" }
            guard vsnprintf(base, capacity, format, arguments) >= 0 else { return "" }
            return String(cString: base)
        }
        var message = Substring(text)
        while message.first?.isWhitespace == true { message.removeFirst() }
        while message.last?.isWhitespace == true { message.removeLast() }
        guard !message.isEmpty else { return }
        Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().log(String(message))
    }
}
