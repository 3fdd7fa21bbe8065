import CCurl
import CCurlShim
import Dispatch
import Locking

/// A blocking libcurl transport behind an `async` API.
///
/// Each request runs on a Dispatch thread, never on Swift's cooperative pool. Easy handles
/// are pooled and reused, so connections stay alive between polls. Responses are
/// decompressed transparently (`Accept-Encoding` lists what libcurl supports), redirects are
/// not followed, and only `http` and `https` are allowed.
public final class CurlHTTPClient: Sendable {
    private let configuration: HTTPClientConfiguration
    private let idleHandles = LockedValue<[EasyHandle]>([])
    private let queue = DispatchQueue(label: "prefect-exporter.http", attributes: .concurrent)

    /// Creates a client. libcurl is initialised once per process.
    public init(configuration: HTTPClientConfiguration) {
        CurlGlobal.ensureInitialised()
        self.configuration = configuration
    }

    deinit {
        for handle in idleHandles.withLock({ $0 }) { handle.close() }
    }

    /// Performs one request. Throws only when no HTTP response was received; any status is a response.
    public func perform(_ request: HTTPRequest) async throws(HTTPClientError) -> HTTPResponse {
        let result: Result<HTTPResponse, HTTPClientError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: self.performBlocking(request))
            }
        }
        return try result.get()
    }

    /// Performs one request on the calling thread.
    public func performBlocking(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPClientError> {
        let handle: EasyHandle
        if let reused = idleHandles.withLock({ $0.popLast() }) {
            handle = reused
        } else if let fresh = EasyHandle() {
            handle = fresh
        } else {
            return .failure(HTTPClientError(kind: .other, message: "libcurl could not create a handle"))
        }
        let result = handle.perform(request, configuration: configuration)
        idleHandles.withLock { $0.append(handle) }
        return result
    }
}

/// One process-wide `curl_global_init`.
enum CurlGlobal {
    private static let initialised: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    static func ensureInitialised() {
        _ = initialised
    }
}

/// Collects a response's headers and body while libcurl runs the transfer.
final class TransferState {
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    var limit: Int
    var exceededLimit = false

    init(limit: Int) {
        self.limit = limit
    }

    static let writeBody: pe_curl_data_callback = { data, size, count, userdata in
        guard let userdata, let data else { return 0 }
        let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        if state.body.count + length > state.limit {
            state.exceededLimit = true
            return 0
        }
        data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            state.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: length))
        }
        return length
    }

    static let writeHeader: pe_curl_data_callback = { data, size, count, userdata in
        guard let userdata, let data else { return 0 }
        let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        let line = data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        }
        if line.hasPrefix("HTTP/") {
            // A new status line (after 100 Continue, for example) starts a new header block.
            state.headers.removeAll()
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingWhitespace().lowercased()
            let value = line[line.index(after: colon)...].trimmingWhitespaceAndNewlines()
            state.headers[name] = value
        } else if line == "\r\n" || line == "\n", state.headers["content-encoding"] == nil,
                  let declared = state.headers["content-length"].flatMap({ Int($0) }), declared >= 0 {
            // The end of the headers of an uncompressed body of known size: refuse one over the
            // limit before buffering any of it, and size the buffer once for the others.
            if declared > state.limit {
                state.exceededLimit = true
                return 0
            }
            state.body.reserveCapacity(declared)
        }
        return length
    }
}

/// A libcurl easy handle. Used by one request at a time.
final class EasyHandle: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    init?() {
        guard let handle = curl_easy_init() else { return nil }
        self.handle = handle
    }

    func close() {
        curl_easy_cleanup(handle)
    }

    func perform(_ request: HTTPRequest, configuration: HTTPClientConfiguration) -> Result<HTTPResponse, HTTPClientError> {
        curl_easy_reset(handle)
        let state = TransferState(limit: configuration.maxResponseBytes)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        if request.method == .post {
            headerList = curl_slist_append(headerList, "Expect:")
        }

        let code: CURLcode = withExtendedLifetime(state) {
            errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
                let statePointer = Unmanaged.passUnretained(state).toOpaque()
                var setupFailed: CURLcode = CURLE_OK
                func check(_ result: CURLcode) {
                    if result != CURLE_OK && setupFailed == CURLE_OK { setupFailed = result }
                }
                check(pe_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress))
                check(pe_curl_easy_setopt_string(handle, CURLOPT_URL, request.url))
                check(pe_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
                check(pe_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
                check(pe_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
                check(pe_curl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
                check(pe_curl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, ""))
                check(pe_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent))
                check(pe_curl_easy_setopt_long(
                    handle, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.clampedMilliseconds))
                check(pe_curl_easy_setopt_long(
                    handle, CURLOPT_TIMEOUT_MS, configuration.requestTimeout.clampedMilliseconds))
                if let caFile = configuration.caFile {
                    check(pe_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile))
                }
                if configuration.insecureSkipVerify {
                    check(pe_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0))
                    check(pe_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0))
                }
                check(pe_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
                switch request.method {
                case .get:
                    check(pe_curl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1))
                case .post:
                    let body = request.body ?? []
                    check(pe_curl_easy_setopt_long(handle, CURLOPT_POST, 1))
                    check(pe_curl_easy_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count))
                    if body.isEmpty {
                        check(pe_curl_easy_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, ""))
                    } else {
                        body.withUnsafeBufferPointer { bytes in
                            // COPYPOSTFIELDS copies, so the buffer need not outlive this call.
                            check(pe_curl_easy_setopt_pointer(
                                handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress)))
                        }
                    }
                }
                check(pe_curl_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, TransferState.writeBody))
                check(pe_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, statePointer))
                check(pe_curl_easy_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, TransferState.writeHeader))
                check(pe_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, statePointer))
                if setupFailed != CURLE_OK { return setupFailed }
                let performed = curl_easy_perform(handle)
                // Detach the error buffer before it goes out of scope.
                _ = pe_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
                return performed
            }
        }

        if code != CURLE_OK {
            if state.exceededLimit {
                return .failure(HTTPClientError(
                    kind: .responseTooLarge,
                    message: "response body exceeds \(configuration.maxResponseBytes) bytes"))
            }
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let summary = String(cString: curl_easy_strerror(code))
            let message = detail.isEmpty ? summary : "\(summary): \(detail)"
            return .failure(HTTPClientError(kind: Self.kind(of: code), message: message))
        }

        var status: Int = 0
        _ = pe_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var downloaded: curl_off_t = 0
        _ = pe_curl_easy_getinfo_off_t(handle, CURLINFO_SIZE_DOWNLOAD_T, &downloaded)
        return .success(HTTPResponse(
            status: status, headers: state.headers, body: state.body, wireBytes: Int(downloaded)))
    }

    private static func kind(of code: CURLcode) -> HTTPClientError.Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
             CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE:
            return .connectionError
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE:
            return .tlsError
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .invalidRequest
        default:
            return .other
        }
    }
}
