import CGnuTLS
import CGnuTLSShim
import WebConfig

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
                pe_gnutls_free(list)
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
        defer { wipe(&copy) }
        return try copy.withUnsafeMutableBufferPointer { buffer throws(WebConfigError) in
            var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
            return try body(&datum)
        }
    }
}
