import Yams

// Reads a web configuration from YAML: ``WebConfig/parse(_:baseDirectory:)``.
//
// Error messages name the key at fault by its path (`tls_server_config.cert_fiel: unknown key`)
// and never repeat a value that may be a secret: bcrypt hashes are never quoted.

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
        try YAMLPrescan.check(text)
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
