import CGnuTLS
import CMicroHTTPD
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// A web configuration file (`--web.config.file`) loaded for the server: the parsed
/// ``WebConfig`` plus the certificate, key and client CA it names, read and checked with
/// GnuTLS at start-up. Nothing is re-read later: changes to the file or to the certificates
/// take effect on restart.
///
/// Its descriptions and mirror show a summary only: never the key or a password hash.
public struct WebSecurity: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration file as given.
    public let configFile: String
    /// The parsed configuration.
    public let config: WebConfig
    /// The TLS material; nil for plain HTTP.
    let tls: TLSMaterial?

    /// Whether the server speaks HTTPS.
    public var isTLSEnabled: Bool { tls != nil }

    /// Reads, parses and checks a web configuration file and everything it names.
    ///
    /// - Throws: ``WebConfigError`` (with ``WebConfigError/file`` set) naming the key at fault.
    public static func load(configFile path: String) throws(WebConfigError) -> WebSecurity {
        do {
            let bytes = try readFile(path, keyPath: "")
            let config = try WebConfig.parse(bytes, baseDirectory: directory(of: path))
            let tls = try config.tlsServer.map { settings throws(WebConfigError) in try TLSMaterial.load(settings) }
            return WebSecurity(configFile: path, config: config, tls: tls)
        } catch {
            var located = error
            located.file = path
            throw located
        }
    }

    /// Makes a configuration from an already parsed file (for tests); loads the TLS files it names.
    public init(config: WebConfig, configFile: String = "<memory>") throws(WebConfigError) {
        self.configFile = configFile
        self.config = config
        self.tls = try config.tlsServer.map { settings throws(WebConfigError) in try TLSMaterial.load(settings) }
    }

    private init(configFile: String, config: WebConfig, tls: TLSMaterial?) {
        self.configFile = configFile
        self.config = config
        self.tls = tls
    }

    public var description: String { "\(config) from \(configFile)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["summary": description]) }

    /// The directory of a file path, as exporter-toolkit's `filepath.Dir`: "." for a bare name.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    static func readFile(_ path: String, keyPath: String) throws(WebConfigError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw WebConfigError(keyPath: keyPath, problem: "cannot read \(path): \(ListeningSocket.errorMessage(errno))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw WebConfigError(keyPath: keyPath, problem: "cannot read \(path): \(ListeningSocket.errorMessage(errno))")
            }
            bytes.append(contentsOf: buffer[0..<count])
            guard bytes.count <= 16 * 1024 * 1024 else {
                throw WebConfigError(keyPath: keyPath, problem: "\(path) is larger than 16 MiB")
            }
        }
        Bcrypt.wipe(&buffer)
        return bytes
    }
}

/// Bytes that are wiped when released (the private key).
final class SecretBytes: @unchecked Sendable, Equatable {
    // Safety: `storage` is written only in init and deinit.
    private let storage: UnsafeMutableBufferPointer<UInt8>

    init(_ bytes: [UInt8]) {
        storage = .allocate(capacity: max(bytes.count, 1))
        _ = storage.initialize(from: bytes)
    }

    deinit {
        if let base = storage.baseAddress { explicit_bzero(base, storage.count) }
        storage.deallocate()
    }

    var count: Int { storage.count }

    func withUnsafeBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        body(UnsafeBufferPointer(storage))
    }

    static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        lhs === rhs || lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEquals(left, right) } }
    }
}

/// What libmicrohttpd needs for TLS, read and checked once.
struct TLSMaterial: Sendable, Equatable {
    /// The server certificate chain, PEM.
    let certificate: [UInt8]
    /// The private key, PEM.
    let key: SecretBytes
    /// What to give libmicrohttpd as MHD_OPTION_HTTPS_MEM_TRUST: the client CAs, or an empty
    /// list so that it asks for a certificate without naming CAs; nil when no certificate is asked for.
    let trust: [UInt8]?
    /// The GnuTLS priority string (versions, curves, server precedence).
    let priorities: String
    /// How client certificates are treated per request.
    let clientAuth: WebConfig.ClientAuthType

    static func load(_ settings: WebConfig.TLSServer) throws(WebConfigError) -> TLSMaterial {
        guard MHD_is_feature_supported(.FEATURE_TLS) == .YES else {
            throw WebConfigError(
                keyPath: "tls_server_config",
                problem: "the system's libmicrohttpd was built without TLS (HTTPS) support; install one with GnuTLS")
        }
        let certificate = try pem(settings.certFile, keyPath: "tls_server_config.cert_file")
        var keyBytes = try pem(settings.keyFile, keyPath: "tls_server_config.key_file")
        defer { Bcrypt.wipe(&keyBytes) }
        let clientCAs = try settings.clientCAFile.map { path throws(WebConfigError) in
            try pem(path, keyPath: "tls_server_config.client_ca_file")
        }
        try GnuTLSCheck.validate(certificate: certificate, key: keyBytes, clientCAs: clientCAs, priorities: settings.gnutlsPriorities)
        let trust: [UInt8]?
        switch settings.clientAuthType {
        case .noClientCert: trust = nil
        default: trust = clientCAs ?? []
        }
        return TLSMaterial(
            certificate: certificate, key: SecretBytes(keyBytes), trust: trust, priorities: settings.gnutlsPriorities,
            clientAuth: settings.clientAuthType)
    }

    /// A PEM file's bytes; libmicrohttpd takes C strings, so a NUL byte is refused.
    private static func pem(_ path: String, keyPath: String) throws(WebConfigError) -> [UInt8] {
        let bytes = try WebSecurity.readFile(path, keyPath: keyPath)
        guard !bytes.contains(0) else {
            throw WebConfigError(keyPath: keyPath, problem: "\(path) is not a PEM file (it contains NUL bytes)")
        }
        return bytes
    }
}

/// Start-up checks with GnuTLS, so that a bad file exits with a clear message instead of a
/// vague libmicrohttpd failure.
enum GnuTLSCheck {
    static func validate(certificate: [UInt8], key: [UInt8], clientCAs: [UInt8]?, priorities: String) throws(WebConfigError) {
        try withDatum(certificate) { cert throws(WebConfigError) in
            var list: UnsafeMutablePointer<gnutls_x509_crt_t?>?
            var count: UInt32 = 0
            let status = gnutls_x509_crt_list_import2(&list, &count, &cert, GNUTLS_X509_FMT_PEM, 0)
            if status >= 0, let list {
                for index in 0..<Int(count) { gnutls_x509_crt_deinit(list[index]) }
                gnutls_free_wrapper(list)
            }
            guard status >= 0, count > 0 else {
                throw WebConfigError(
                    keyPath: "tls_server_config.cert_file", problem: "no PEM certificate in it (\(message(status)))")
            }
        }
        try withDatum(key) { keyDatum throws(WebConfigError) in
            var privateKey: gnutls_x509_privkey_t?
            guard gnutls_x509_privkey_init(&privateKey) == 0 else {
                throw WebConfigError(keyPath: "tls_server_config.key_file", problem: "cannot initialize GnuTLS")
            }
            defer { gnutls_x509_privkey_deinit(privateKey) }
            let status = gnutls_x509_privkey_import2(privateKey, &keyDatum, GNUTLS_X509_FMT_PEM, nil, 0)
            guard status >= 0 else {
                throw WebConfigError(
                    keyPath: "tls_server_config.key_file",
                    problem: "no usable unencrypted PEM private key in it (\(message(status)))")
            }
        }
        var credentials: gnutls_certificate_credentials_t?
        guard gnutls_certificate_allocate_credentials(&credentials) == 0 else {
            throw WebConfigError(keyPath: "tls_server_config", problem: "cannot initialize GnuTLS")
        }
        defer { gnutls_certificate_free_credentials(credentials) }
        try withDatum(certificate) { cert throws(WebConfigError) in
            try withDatum(key) { keyDatum throws(WebConfigError) in
                let status = gnutls_certificate_set_x509_key_mem2(credentials, &cert, &keyDatum, GNUTLS_X509_FMT_PEM, nil, 0)
                if status == GNUTLS_E_CERTIFICATE_KEY_MISMATCH {
                    throw WebConfigError(keyPath: "tls_server_config.key_file", problem: "the key does not match the certificate in cert_file")
                }
                guard status >= 0 else {
                    throw WebConfigError(keyPath: "tls_server_config", problem: "GnuTLS cannot use cert_file with key_file: \(message(status))")
                }
            }
        }
        if let clientCAs {
            try withDatum(clientCAs) { cas throws(WebConfigError) in
                let status = gnutls_certificate_set_x509_trust_mem(credentials, &cas, GNUTLS_X509_FMT_PEM)
                guard status >= 0 else {
                    throw WebConfigError(keyPath: "tls_server_config.client_ca_file", problem: "not a PEM certificate file (\(message(status)))")
                }
                guard status > 0 else {
                    throw WebConfigError(keyPath: "tls_server_config.client_ca_file", problem: "no PEM certificate in it")
                }
            }
        }
        var cache: gnutls_priority_t?
        var errorPosition: UnsafePointer<CChar>?
        let status = gnutls_priority_init(&cache, priorities, &errorPosition)
        guard status >= 0 else {
            throw WebConfigError(
                keyPath: "tls_server_config", problem: "GnuTLS rejects the TLS settings (\(priorities)): \(message(status))")
        }
        gnutls_priority_deinit(cache)
    }

    static func message(_ status: Int32) -> String {
        guard status < 0, let text = gnutls_strerror(status) else { return "no certificate found" }
        return String(cString: text)
    }

    private static func withDatum<Result>(
        _ bytes: [UInt8], _ body: (inout gnutls_datum_t) throws(WebConfigError) -> Result
    ) throws(WebConfigError) -> Result {
        var copy = bytes
        defer { Bcrypt.wipe(&copy) }
        return try copy.withUnsafeMutableBufferPointer { buffer throws(WebConfigError) in
            var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
            return try body(&datum)
        }
    }
}

/// Frees memory GnuTLS allocated (gnutls_free is a function pointer variable in C).
private func gnutls_free_wrapper(_ pointer: UnsafeMutableRawPointer?) {
    free(pointer)
}

/// What the server checks on every request when a web configuration is in force: the client
/// certificate (per `client_auth_type`), then basic auth; and the headers it adds to every response.
final class SecurityGate: Sendable {
    let clientAuth: WebConfig.ClientAuthType
    let authenticator: BasicAuthenticator?
    let headers: [HTTPHeader]
    private let unauthorized = ResponseBody("401 Unauthorized\n")
    private let forbidden = ResponseBody("403 Forbidden: a valid client certificate is required\n")

    init(security: WebSecurity) {
        clientAuth = security.tls?.clientAuth ?? .noClientCert
        authenticator = security.config.basicAuthUsers.isEmpty ? nil : BasicAuthenticator(users: security.config.basicAuthUsers)
        headers = security.config.headers.sorted { $0.key < $1.key }.map { HTTPHeader($0.key, $0.value) }
    }

    /// The response refusing the request, or nil to let it through.
    func deny(_ request: Request, tlsSession: UnsafeMutableRawPointer?, logger: Logger) -> Response? {
        if clientAuth.requiresCertificate || clientAuth.verifiesCertificate {
            if let problem = ClientCertificate.problem(session: tlsSession.map(OpaquePointer.init), policy: clientAuth) {
                logger.debug("Request refused: client certificate \(problem)", metadata: ["path": "\(request.path)"])
                return Response(
                    status: 403, contentType: ExporterRoutes.textContentType, headers: [HTTPHeader("Connection", "close")],
                    body: forbidden)
            }
        }
        if let authenticator, !authenticator.authenticate(authorization: request.header("Authorization")) {
            logger.debug("Request refused: missing or wrong basic auth credentials", metadata: ["path": "\(request.path)"])
            return Response(
                status: 401, contentType: ExporterRoutes.textContentType,
                headers: [HTTPHeader("WWW-Authenticate", BasicAuthenticator.challenge)], body: unauthorized)
        }
        return nil
    }
}

/// Client certificate checks on an established GnuTLS session.
enum ClientCertificate {
    /// OID of the TLS client authentication extended key usage (what Go requires too).
    static let clientAuthPurpose = "1.3.6.1.5.5.7.3.2"

    /// Why the session's client certificate is not acceptable under `policy`, or nil when it is.
    static func problem(session: gnutls_session_t?, policy: WebConfig.ClientAuthType) -> String? {
        guard let session else { return "missing (no TLS session)" }
        var count: UInt32 = 0
        let peers = gnutls_certificate_get_peers(session, &count)
        guard peers != nil, count > 0 else { return policy.requiresCertificate ? "missing" : nil }
        guard policy.verifiesCertificate else { return nil }
        var status: UInt32 = 0
        var purpose = Array(clientAuthPurpose.utf8) + [0]
        let result = purpose.withUnsafeMutableBufferPointer { oid -> Int32 in
            var data = gnutls_typed_vdata_st(type: GNUTLS_DT_KEY_PURPOSE_OID, data: oid.baseAddress, size: 0)
            return gnutls_certificate_verify_peers(session, &data, 1, &status)
        }
        guard result == 0 else { return "not verifiable (\(GnuTLSCheck.message(result)))" }
        return status == 0 ? nil : describe(status)
    }

    static func describe(_ status: UInt32) -> String {
        var reasons: [String] = []
        let known: [(gnutls_certificate_status_t, String)] = [
            (GNUTLS_CERT_SIGNER_NOT_FOUND, "not issued by a CA in client_ca_file"),
            (GNUTLS_CERT_SIGNER_NOT_CA, "signed by a certificate that is not a CA"),
            (GNUTLS_CERT_EXPIRED, "expired"),
            (GNUTLS_CERT_NOT_ACTIVATED, "not yet valid"),
            (GNUTLS_CERT_REVOKED, "revoked"),
            (GNUTLS_CERT_PURPOSE_MISMATCH, "not for TLS client authentication"),
            (GNUTLS_CERT_INSECURE_ALGORITHM, "signed with an insecure algorithm"),
            (GNUTLS_CERT_SIGNATURE_FAILURE, "with a bad signature"),
        ]
        for (flag, text) in known where status & flag.rawValue != 0 { reasons.append(text) }
        return reasons.isEmpty ? "invalid (GnuTLS status 0x\(String(status, radix: 16)))" : "invalid: " + reasons.joined(separator: ", ")
    }
}
