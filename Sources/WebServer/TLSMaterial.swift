import CMicroHTTPD
import WebConfig

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
        defer { wipe(&keyBytes) }
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
