import Yams

// The web configuration file of Prometheus exporters (`--web.config.file`), in the format of
// the Prometheus exporter-toolkit:
// https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
//
// This file is pure: bytes in, a validated ``WebConfig`` (or a ``WebConfigError``) out. It reads
// no file and needs neither libmicrohttpd nor GnuTLS, so that it can be unit-tested and fuzzed
// on its own (see Fuzz/WebConfigFuzz). Loading the files it names is ``WebSecurity``'s job.
//
// Error messages name the key at fault by its path (`tls_server_config.cert_fiel: unknown key`)
// and never repeat a value that may be a secret: bcrypt hashes are never quoted.

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
        case tls10 = 10, tls11, tls12, tls13

        /// The name in the file: `TLS10` ... `TLS13`.
        public var name: String { "TLS1\(rawValue - 10)" }
        var gnutlsName: String { "VERS-TLS1.\(rawValue - 10)" }

        init?(name: String) {
            guard let version = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = version
        }

        public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// `curve_preferences`: Go's curve names.
    public enum Curve: String, Sendable, Equatable, CaseIterable {
        case p256 = "CurveP256", p384 = "CurveP384", p521 = "CurveP521", x25519 = "X25519"

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

/// A problem in the web configuration: the key at fault (by path) and what is wrong with it.
///
/// The description is one line, e.g. `/etc/web.yml: tls_server_config.cert_fiel: unknown key`.
/// It never contains a password hash, a key or a password.
public struct WebConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file, when known.
    public var file: String?
    /// The key path, e.g. `tls_server_config.cert_file`; empty for the file as a whole.
    public var keyPath: String
    /// What is wrong.
    public var problem: String

    public init(file: String? = nil, keyPath: String, problem: String) {
        self.file = file
        self.keyPath = keyPath
        self.problem = problem
    }

    public var description: String {
        var text = keyPath.isEmpty ? problem : "\(keyPath): \(problem)"
        if let file { text = "\(file): \(text)" }
        // One line, whatever came in.
        return String(text.map { $0.isNewline ? " " : $0 })
    }
}

extension WebConfig {
    /// Parses and validates a web configuration file's bytes.
    ///
    /// - Parameters:
    ///   - bytes: the file's contents (UTF-8 YAML).
    ///   - baseDirectory: the file's directory; relative file paths in it are joined to this one
    ///     (as exporter-toolkit does). Empty leaves them as written.
    /// - Throws: ``WebConfigError`` naming the key at fault.
    public static func parse(_ bytes: [UInt8], baseDirectory: String = "") throws(WebConfigError) -> WebConfig {
        guard bytes.count <= maximumFileSize else {
            throw WebConfigError(keyPath: "", problem: "the file is larger than \(maximumFileSize / 1024) KiB")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw WebConfigError(keyPath: "", problem: "the file is not valid UTF-8")
        }
        try YAMLPrescan.check(bytes)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw WebConfigError(keyPath: "", problem: describe(error))
        } catch {
            throw WebConfigError(keyPath: "", problem: "invalid YAML")
        }
        var parser = ConfigParser(baseDirectory: baseDirectory)
        return try parser.parseRoot(root)
    }

    /// A YAML error in one line, without the snippet of the file that Yams adds (it may show a secret).
    static func describe(_ error: YamlError) -> String {
        func at(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> String {
            var text = "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
            if let context, !context.text.isEmpty { text += " (\(context.text))" }
            return text
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            return at(mark, problem, context)
        case let .reader(problem, offset, _, _):
            return "invalid YAML" + (offset.map { " at byte \($0)" } ?? "") + ": \(problem)"
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "'\(displayKey($0))'" }.joined(separator: ", ")
            return "invalid YAML at line \(context.mark.line): duplicate key \(keys)"
        default:
            return "invalid YAML"
        }
    }

    /// A key as shown in an error: control characters replaced, at most 64 characters, and
    /// never something that looks like a password hash (a mis-indented hash can become a key).
    static func displayKey(_ key: String) -> String {
        if looksLikeHash(key) { return "<a key that looks like a password hash>" }
        var shown = String(key.unicodeScalars.map { scalar -> Character in
            scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                ? "?" : Character(scalar)
        })
        if shown.count > 64 { shown = String(shown.prefix(64)) + "…" }
        return shown
    }
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

    public var debugDescription: String { description }

    /// Mirrors show the summary only, so that `dump()` never prints a hash.
    public var customMirror: Mirror { Mirror(self, children: ["summary": description]) }
}

extension WebConfig {
    /// Whether the text contains `$2a$`, `$2b$`, `$2x$` or `$2y$` followed by two digits and `$`:
    /// the start of a bcrypt hash.
    public static func looksLikeHash(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 7 else { return false }
        for start in 0...(bytes.count - 7)
        where bytes[start] == UInt8(ascii: "$") && bytes[start + 1] == UInt8(ascii: "2") && bytes[start + 3] == UInt8(ascii: "$")
            && bytes[start + 6] == UInt8(ascii: "$")
            && bytes[(start + 4)...(start + 5)].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        {
            return true
        }
        return false
    }
}

/// Walks the YAML tree and builds the configuration, like Go's `yaml.UnmarshalStrict` into
/// exporter-toolkit's structs, then checks what exporter-toolkit checks (and a little more).
private struct ConfigParser {
    let baseDirectory: String

    init(baseDirectory: String) {
        self.baseDirectory = baseDirectory
    }

    typealias Entry = (key: String, value: Node)

    mutating func parseRoot(_ root: Node?) throws(WebConfigError) -> WebConfig {
        var config = WebConfig()
        guard let entries = try mapping(root, at: "", what: "a mapping at the top level") else { return config }
        for (key, value) in entries {
            switch key {
            case "tls_server_config":
                config.tlsServer = try parseTLS(value)
            case "http_server_config":
                try parseHTTP(value, into: &config)
            case "basic_auth_users":
                config.basicAuthUsers = try parseUsers(value)
            case "rate_limit":
                throw unsupported(
                    key, "prefect-exporter has no rate limiter (newer exporter-toolkit versions have); remove the key")
            default:
                throw WebConfigError(keyPath: WebConfig.displayKey(key), problem: "unknown key")
            }
        }
        return config
    }

    // MARK: tls_server_config

    private func parseTLS(_ node: Node) throws(WebConfigError) -> WebConfig.TLSServer? {
        let base = "tls_server_config"
        guard let entries = try mapping(node, at: base), !entries.isEmpty else { return nil }
        var certFile = ""
        var keyFile = ""
        var clientAuth = ""
        var clientCAFile = ""
        var minVersion = WebConfig.TLSVersion.tls12
        var maxVersion = WebConfig.TLSVersion.tls13
        var curves: [WebConfig.Curve] = []
        var preferServer = true
        for (key, value) in entries {
            let path = "\(base).\(WebConfig.displayKey(key))"
            switch key {
            case "cert_file": certFile = try string(value, at: path)
            case "key_file": keyFile = try string(value, at: path)
            case "client_auth_type": clientAuth = try string(value, at: path)
            case "client_ca_file": clientCAFile = try string(value, at: path)
            case "min_version": minVersion = try version(value, at: path) ?? .tls12
            case "max_version": maxVersion = try version(value, at: path) ?? .tls13
            case "prefer_server_cipher_suites": preferServer = try bool(value, at: path) ?? true
            case "curve_preferences":
                for (index, name) in try strings(value, at: path).enumerated() {
                    guard let curve = WebConfig.Curve(rawValue: name) else {
                        throw WebConfigError(
                            keyPath: "\(path)[\(index)]",
                            problem: "unknown curve \"\(WebConfig.displayKey(name))\"; expected "
                                + WebConfig.Curve.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    curves.append(curve)
                }
            case "cipher_suites":
                // An empty list restricts nothing; a list would restrict clients, which GnuTLS
                // cannot do exactly by Go's suite names, so it is refused rather than ignored.
                guard try strings(value, at: path).isEmpty else {
                    throw unsupported(
                        path,
                        "GnuTLS cannot be limited to exactly a list of Go cipher suites, and ignoring the list "
                            + "would accept ciphers you excluded; remove it (GnuTLS's NORMAL cipher suites are used, "
                            + "and TLS 1.3 suites are never configurable, as in Go)")
                }
            case "client_allowed_sans":
                throw unsupported(
                    path,
                    "client certificates cannot be restricted by subject alternative name; issue client "
                        + "certificates from a dedicated CA and name it in client_ca_file instead")
            case "cert", "key", "client_ca":
                throw unsupported(path, "inline certificates and keys are not supported; use cert_file, key_file and client_ca_file")
            default:
                throw WebConfigError(keyPath: path, problem: "unknown key")
            }
        }
        guard !certFile.isEmpty else {
            throw WebConfigError(keyPath: "\(base).cert_file", problem: "required when tls_server_config is set")
        }
        guard !keyFile.isEmpty else {
            throw WebConfigError(keyPath: "\(base).key_file", problem: "required when tls_server_config is set")
        }
        let authType: WebConfig.ClientAuthType
        switch clientAuth {
        case "": authType = .noClientCert
        case "RequireClientCert": authType = .requireAnyClientCert  // exporter-toolkit's old name
        default:
            guard let known = WebConfig.ClientAuthType(rawValue: clientAuth) else {
                throw WebConfigError(
                    keyPath: "\(base).client_auth_type",
                    problem: "invalid value \"\(WebConfig.displayKey(clientAuth))\"; expected "
                        + WebConfig.ClientAuthType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            authType = known
        }
        if !clientCAFile.isEmpty, authType == .noClientCert {
            throw WebConfigError(
                keyPath: "\(base).client_ca_file",
                problem: "set without client_auth_type; set client_auth_type (e.g. RequireAndVerifyClientCert) or remove it")
        }
        if clientCAFile.isEmpty, authType.verifiesCertificate {
            throw WebConfigError(
                keyPath: "\(base).client_ca_file",
                problem: "required when client_auth_type is \(authType.rawValue): client certificates are verified against it")
        }
        guard minVersion <= maxVersion else {
            throw WebConfigError(
                keyPath: "\(base).min_version",
                problem: "\(minVersion.name) is above max_version \(maxVersion.name): no TLS version would be left")
        }
        return WebConfig.TLSServer(
            certFile: resolve(certFile), keyFile: resolve(keyFile), clientAuthType: authType,
            clientCAFile: clientCAFile.isEmpty ? nil : resolve(clientCAFile), minVersion: minVersion, maxVersion: maxVersion,
            curvePreferences: curves, preferServerCipherSuites: preferServer)
    }

    private func version(_ node: Node, at path: String) throws(WebConfigError) -> WebConfig.TLSVersion? {
        let name = try string(node, at: path)
        guard !name.isEmpty else { return nil }
        guard let version = WebConfig.TLSVersion(name: name) else {
            throw WebConfigError(
                keyPath: path, problem: "unknown TLS version \"\(WebConfig.displayKey(name))\"; expected TLS10, TLS11, TLS12 or TLS13")
        }
        return version
    }

    /// A path from the file, joined to the file's directory when relative (exporter-toolkit's JoinDir).
    private func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), !baseDirectory.isEmpty else { return path }
        return baseDirectory.hasSuffix("/") ? baseDirectory + path : baseDirectory + "/" + path
    }

    // MARK: http_server_config

    private func parseHTTP(_ node: Node, into config: inout WebConfig) throws(WebConfigError) {
        let base = "http_server_config"
        guard let entries = try mapping(node, at: base) else { return }
        for (key, value) in entries {
            let path = "\(base).\(WebConfig.displayKey(key))"
            switch key {
            case "http2":
                config.http2 = try bool(value, at: path) ?? true
            case "headers":
                guard let headers = try mapping(value, at: path) else { continue }
                for (name, valueNode) in headers {
                    let headerPath = "\(path).\(WebConfig.displayKey(name))"
                    let headerValue = try string(valueNode, at: headerPath)
                    guard let allowed = WebConfig.configurableHeaders[name] else {
                        throw WebConfigError(
                            keyPath: headerPath,
                            problem: "this header cannot be configured; allowed (exact spelling): "
                                + WebConfig.configurableHeaders.keys.sorted().joined(separator: ", "))
                    }
                    if !allowed.isEmpty, !allowed.contains(headerValue) {
                        throw WebConfigError(
                            keyPath: headerPath, problem: "invalid value; expected " + allowed.joined(separator: " or "))
                    }
                    guard !headerValue.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
                        throw WebConfigError(keyPath: headerPath, problem: "the value must not contain control characters or line breaks")
                    }
                    config.headers[name] = headerValue
                }
            default:
                throw WebConfigError(keyPath: path, problem: "unknown key")
            }
        }
    }

    // MARK: basic_auth_users

    private func parseUsers(_ node: Node) throws(WebConfigError) -> [String: String] {
        let base = "basic_auth_users"
        guard let entries = try mapping(node, at: base) else { return [:] }
        var users: [String: String] = [:]
        for (user, value) in entries {
            let path = "\(base).\(WebConfig.displayKey(user))"
            let hash = try string(value, at: path)
            if let problem = BcryptHash.problem(with: hash) {
                throw WebConfigError(keyPath: path, problem: problem)
            }
            users[user] = hash
        }
        return users
    }

    // MARK: YAML values

    /// The entries of a mapping, nil for null. Keys must be scalars (read as text, as Go's yaml.v2 does).
    private func mapping(_ node: Node?, at path: String, what: String = "a mapping") throws(WebConfigError) -> [Entry]? {
        guard let node, !isNull(node) else { return nil }
        guard case .mapping(let mapping) = node else {
            throw WebConfigError(keyPath: path, problem: "expected \(what), got \(kind(of: node))")
        }
        var entries: [Entry] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw WebConfigError(keyPath: path, problem: "keys must be strings, got \(kind(of: key))")
            }
            entries.append((isNull(key) ? "" : scalar.string, value))
        }
        return entries
    }

    /// A scalar's text; "" for null. Any scalar is accepted, as Go's yaml.v2 reads `123` into a string.
    private func string(_ node: Node, at path: String) throws(WebConfigError) -> String {
        if isNull(node) { return "" }
        guard case .scalar(let scalar) = node else {
            throw WebConfigError(keyPath: path, problem: "expected a string, got \(kind(of: node))")
        }
        return scalar.string
    }

    /// A boolean, nil for null. YAML 1.1 spellings (yes, on, y...) are accepted unquoted, as in Go's yaml.v2.
    private func bool(_ node: Node, at path: String) throws(WebConfigError) -> Bool? {
        if isNull(node) { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any {
            let tag = scalar.tag.rawValue
            if tag == Tag.Name.implicit.rawValue || tag == Tag.Name.bool.rawValue {
                switch scalar.string {
                case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y": return true
                case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N": return false
                default: break
                }
            }
        }
        throw WebConfigError(keyPath: path, problem: "expected true or false")
    }

    /// A list of strings; empty for null.
    private func strings(_ node: Node, at path: String) throws(WebConfigError) -> [String] {
        if isNull(node) { return [] }
        guard case .sequence(let sequence) = node else {
            throw WebConfigError(keyPath: path, problem: "expected a list of strings, got \(kind(of: node))")
        }
        var result: [String] = []
        for (index, element) in sequence.enumerated() {
            result.append(try string(element, at: "\(path)[\(index)]"))
        }
        return result
    }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        switch scalar.tag.rawValue {
        case Tag.Name.implicit.rawValue:
            guard scalar.style == .plain || scalar.style == .any else { return false }
            return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        case Tag.Name.null.rawValue:
            return true
        default:
            return false
        }
    }

    private func kind(of node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar: return "a scalar"
        case .alias: return "an alias"
        }
    }

    private func unsupported(_ path: String, _ why: String) -> WebConfigError {
        WebConfigError(keyPath: path, problem: "not supported by prefect-exporter: \(why)")
    }
}

/// The format of bcrypt hashes: `$2y$`, `$2b$` or `$2a$`, a two-digit cost from 04 to 31, and
/// 53 characters of bcrypt's base64 (22 of salt, 31 of hash): 60 characters in all.
public enum BcryptHash {
    /// The length of a bcrypt hash.
    public static let length = 60
    static let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// Why `hash` is not a usable bcrypt hash, or nil when it is. Never quotes the hash.
    public static func problem(with hash: String) -> String? {
        let bytes = Array(hash.utf8)
        let expected = "not a bcrypt hash: expected $2y$, $2b$ or $2a$, a two-digit cost, '$' and 53 characters "
            + "(60 in all, as `htpasswd -nbBC 10 user password` prints after the colon)"
        guard bytes.count == length, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
            bytes[6] == UInt8(ascii: "$")
        else { return expected }
        guard let cost = cost(of: bytes) else { return expected }
        guard (4...31).contains(cost) else { return "bcrypt cost \(cost) is outside the allowed range 4 to 31" }
        guard bytes[7...].allSatisfy({ alphabet.contains($0) }) else { return expected }
        return nil
    }

    /// The cost of a well-formed hash.
    static func cost(of bytes: [UInt8]) -> Int? {
        guard bytes.count >= 7 else { return nil }
        let digits = bytes[4...5]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }
}
