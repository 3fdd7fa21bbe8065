import CGnuTLS
import WebConfig

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
