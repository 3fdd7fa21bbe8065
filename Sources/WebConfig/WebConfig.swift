// The web configuration file of Prometheus exporters (`--web.config.file`), in the format of
// the Prometheus exporter-toolkit:
// https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
//
// This module is pure: bytes in, a validated ``WebConfig`` (or a ``WebConfigError``) out. It reads
// no file and needs neither libmicrohttpd nor GnuTLS, so that it can be unit-tested and fuzzed
// on its own (see Fuzz/WebConfigFuzz). Loading the files it names is the WebServer module's job
// (`WebSecurity`).
//
// This file is the model; WebConfigParser.swift reads it from YAML.

/// A parsed and validated web configuration file.
///
/// Its description never shows the password hashes.
public struct WebConfig: Sendable, Equatable {
    /// TLS settings; nil when the file has no (or an empty) `tls_server_config`: plain HTTP.
    public var tlsServer: TLSServer?
    /// `http_server_config.http2`: accepted and ignored (libmicrohttpd has no HTTP/2).
    public var http2: Bool
    /// `http_server_config.headers`: extra headers added to every response, by exact name.
    public var headers: [String: String]
    /// `basic_auth_users`: user name to bcrypt hash.
    public var basicAuthUsers: [String: String]

    /// An empty configuration: plain HTTP, no authentication, no extra headers.
    public init(tlsServer: TLSServer? = nil, http2: Bool = true, headers: [String: String] = [:], basicAuthUsers: [String: String] = [:]) {
        self.tlsServer = tlsServer
        self.http2 = http2
        self.headers = headers
        self.basicAuthUsers = basicAuthUsers
    }

    /// `tls_server_config`.
    public struct TLSServer: Sendable, Equatable {
        /// `cert_file`, joined to the configuration file's directory when relative.
        public var certFile: String
        /// `key_file`, joined to the configuration file's directory when relative.
        public var keyFile: String
        /// `client_auth_type`.
        public var clientAuthType: ClientAuthType
        /// `client_ca_file`, joined to the configuration file's directory when relative.
        public var clientCAFile: String?
        /// `min_version`; TLS12 when not set.
        public var minVersion: TLSVersion
        /// `max_version`; TLS13 when not set.
        public var maxVersion: TLSVersion
        /// `curve_preferences`, in order; empty for GnuTLS's defaults.
        public var curvePreferences: [Curve]
        /// `prefer_server_cipher_suites`; true when not set.
        public var preferServerCipherSuites: Bool

        /// Creates TLS settings; every parameter but the two files has exporter-toolkit's default.
        public init(
            certFile: String, keyFile: String, clientAuthType: ClientAuthType = .noClientCert, clientCAFile: String? = nil,
            minVersion: TLSVersion = .tls12, maxVersion: TLSVersion = .tls13, curvePreferences: [Curve] = [],
            preferServerCipherSuites: Bool = true
        ) {
            self.certFile = certFile
            self.keyFile = keyFile
            self.clientAuthType = clientAuthType
            self.clientCAFile = clientCAFile
            self.minVersion = minVersion
            self.maxVersion = maxVersion
            self.curvePreferences = curvePreferences
            self.preferServerCipherSuites = preferServerCipherSuites
        }

        /// The GnuTLS priority string that enforces the versions, curves and server preference,
        /// e.g. `NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE`.
        public var gnutlsPriorities: String {
            var parts = ["NORMAL", "-VERS-ALL"]
            for version in TLSVersion.allCases.reversed() where version >= minVersion && version <= maxVersion {
                parts.append("+\(version.gnutlsName)")
            }
            if !curvePreferences.isEmpty {
                parts.append("-GROUP-ALL")
                for curve in curvePreferences { parts.append("+\(curve.gnutlsName)") }
            }
            if preferServerCipherSuites { parts.append("%SERVER_PRECEDENCE") }
            return parts.joined(separator: ":")
        }
    }

    /// `client_auth_type`: Go's tls.ClientAuthType names.
    public enum ClientAuthType: String, Sendable, Equatable, CaseIterable {
        /// No client certificate is asked for.
        case noClientCert = "NoClientCert"
        /// A certificate is asked for; none is required and one sent is not verified.
        case requestClientCert = "RequestClientCert"
        /// A certificate is required but not verified (`RequireClientCert` is an old alias).
        case requireAnyClientCert = "RequireAnyClientCert"
        /// A certificate is not required; one sent must verify against `client_ca_file`.
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        /// A certificate is required and must verify against `client_ca_file`.
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

        /// Whether a certificate the client sends is verified against the client CAs.
        public var verifiesCertificate: Bool {
            self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert
        }

        /// Whether a request without a client certificate is refused.
        public var requiresCertificate: Bool {
            self == .requireAnyClientCert || self == .requireAndVerifyClientCert
        }
    }

    /// `min_version` and `max_version`.
    public enum TLSVersion: Int, Sendable, Equatable, Comparable, CaseIterable {
        /// TLS 1.0 (`TLS10`).
        case tls10 = 10
        /// TLS 1.1 (`TLS11`).
        case tls11
        /// TLS 1.2 (`TLS12`), the default minimum.
        case tls12
        /// TLS 1.3 (`TLS13`), the default maximum.
        case tls13

        /// The name in the file: `TLS10` ... `TLS13`.
        public var name: String { "TLS1\(rawValue - 10)" }
        var gnutlsName: String { "VERS-TLS1.\(rawValue - 10)" }

        init?(name: String) {
            guard let version = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = version
        }

        /// Older versions sort first.
        public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// `curve_preferences`: Go's curve names.
    public enum Curve: String, Sendable, Equatable, CaseIterable {
        /// NIST P-256.
        case p256 = "CurveP256"
        /// NIST P-384.
        case p384 = "CurveP384"
        /// NIST P-521.
        case p521 = "CurveP521"
        /// Curve25519.
        case x25519 = "X25519"

        var gnutlsName: String {
            switch self {
            case .p256: return "GROUP-SECP256R1"
            case .p384: return "GROUP-SECP384R1"
            case .p521: return "GROUP-SECP521R1"
            case .x25519: return "GROUP-X25519"
            }
        }
    }

    /// The headers `http_server_config.headers` may set (as in exporter-toolkit), with their
    /// allowed values when those are an enumeration. Names are matched exactly, like
    /// exporter-toolkit does.
    public static let configurableHeaders: [String: [String]] = [
        "Strict-Transport-Security": [],
        "X-Content-Type-Options": ["nosniff"],
        "X-Frame-Options": ["deny", "sameorigin"],
        "X-XSS-Protection": [],
        "Content-Security-Policy": [],
    ]

    /// Files larger than this are refused before parsing (web configuration files are tiny).
    public static let maximumFileSize = 1 << 20
}

extension WebConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A summary without the password hashes.
    public var description: String {
        var parts: [String] = []
        if let tls = tlsServer {
            parts.append("tls=\(tls.minVersion.name)-\(tls.maxVersion.name)")
            parts.append("client_auth=\(tls.clientAuthType.rawValue)")
        } else {
            parts.append("tls=off")
        }
        parts.append("basic_auth_users=\(basicAuthUsers.count)")
        if !headers.isEmpty { parts.append("headers=\(headers.keys.sorted().joined(separator: ","))") }
        return "WebConfig(" + parts.joined(separator: " ") + ")"
    }

    /// The same summary as ``description``.
    public var debugDescription: String { description }

    /// Mirrors show the summary only, so that `dump()` never prints a hash.
    public var customMirror: Mirror { Mirror(self, children: ["summary": description]) }
}
