import Testing
import WebConfig

/// A bcrypt hash of "U*U" (crypt_blowfish's test vector), valid for every test that needs one.
let knownHash = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

private func parse(_ yaml: String, base: String = "/etc/exporter") throws(WebConfigError) -> WebConfig {
    try WebConfig.parse(Array(yaml.utf8), baseDirectory: base)
}

/// The error a configuration produces, as "key.path: problem"; nil when it parses.
private func failure(_ yaml: String) -> WebConfigError? {
    do {
        _ = try parse(yaml)
        return nil
    } catch {
        return error
    }
}

@Suite("Web configuration parser")
struct WebConfigTests {
    @Test func emptyFilesMeanPlainHTTP() throws {
        for yaml in ["", "\n", "# only a comment\n", "---\n", "~\n", "tls_server_config:\n", "tls_server_config: {}\n",
                     "basic_auth_users:\n", "http_server_config:\n", "http_server_config: {headers: }\n"] {
            let config = try parse(yaml)
            #expect(config == WebConfig(), "\(yaml.debugDescription)")
        }
    }

    @Test func fullConfiguration() throws {
        let config = try parse(
            """
            tls_server_config:
              cert_file: server.pem
              key_file: /abs/server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca/clients.pem
              min_version: TLS13
              max_version: TLS13
              curve_preferences: [X25519, CurveP256]
              prefer_server_cipher_suites: false
              cipher_suites: []
            http_server_config:
              http2: false
              headers:
                X-Frame-Options: deny
                Strict-Transport-Security: max-age=31536000; includeSubDomains
            basic_auth_users:
              alice: \(knownHash)
              "bob": '\(knownHash)'
            """)
        let tls = try #require(config.tlsServer)
        #expect(tls.certFile == "/etc/exporter/server.pem")
        #expect(tls.keyFile == "/abs/server.key")
        #expect(tls.clientCAFile == "/etc/exporter/ca/clients.pem")
        #expect(tls.clientAuthType == .requireAndVerifyClientCert)
        #expect(tls.minVersion == .tls13 && tls.maxVersion == .tls13)
        #expect(tls.curvePreferences == [.x25519, .p256])
        #expect(!tls.preferServerCipherSuites)
        #expect(!config.http2)
        #expect(config.headers == ["X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=31536000; includeSubDomains"])
        #expect(config.basicAuthUsers == ["alice": knownHash, "bob": knownHash])
        #expect(tls.gnutlsPriorities == "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1")
    }

    @Test func defaultsAndPriorities() throws {
        let tls = try #require(try parse("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n").tlsServer)
        #expect(tls.minVersion == .tls12 && tls.maxVersion == .tls13)
        #expect(tls.clientAuthType == .noClientCert)
        #expect(tls.clientCAFile == nil)
        #expect(tls.preferServerCipherSuites)
        #expect(tls.gnutlsPriorities == "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE")
        let old = try #require(try parse("tls_server_config: {cert_file: c, key_file: k, min_version: TLS10, max_version: TLS11}").tlsServer)
        #expect(old.gnutlsPriorities == "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0:%SERVER_PRECEDENCE")
    }

    @Test func relativePathsAreJoinedToTheConfigDirectory() throws {
        let yaml = "tls_server_config: {cert_file: a/c.pem, key_file: k.pem, client_auth_type: RequestClientCert, client_ca_file: /ca.pem}"
        let tls = try #require(try parse(yaml, base: ".").tlsServer)
        #expect(tls.certFile == "./a/c.pem")
        #expect(tls.keyFile == "./k.pem")
        #expect(tls.clientCAFile == "/ca.pem")
        #expect(try parse(yaml, base: "/").tlsServer?.keyFile == "/k.pem")
        #expect(try parse(yaml, base: "").tlsServer?.keyFile == "k.pem")
    }

    @Test func clientAuthTypes() throws {
        let cases: [(String, WebConfig.ClientAuthType, Bool)] = [
            ("NoClientCert", .noClientCert, false), ("\"\"", .noClientCert, false),
            ("RequestClientCert", .requestClientCert, false), ("RequireAnyClientCert", .requireAnyClientCert, false),
            ("RequireClientCert", .requireAnyClientCert, false),  // exporter-toolkit's old name
            ("VerifyClientCertIfGiven", .verifyClientCertIfGiven, true),
            ("RequireAndVerifyClientCert", .requireAndVerifyClientCert, true),
        ]
        for (value, expected, needsCA) in cases {
            let ca = needsCA ? "\n  client_ca_file: ca.pem" : ""
            let tls = try parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: \(value)\(ca)\n").tlsServer
            #expect(tls?.clientAuthType == expected, "\(value)")
        }
    }

    @Test func yamlScalarsAreReadLikeGoYAMLv2() throws {
        // Any scalar reads as a string; YAML 1.1 booleans are accepted unquoted.
        let config = try parse(
            """
            tls_server_config: {cert_file: 123, key_file: true, prefer_server_cipher_suites: no}
            http_server_config: {http2: Off}
            basic_auth_users: {42: \(knownHash)}
            """)
        #expect(config.tlsServer?.certFile == "/etc/exporter/123")
        #expect(config.tlsServer?.keyFile == "/etc/exporter/true")
        #expect(config.tlsServer?.preferServerCipherSuites == false)
        #expect(!config.http2)
        #expect(config.basicAuthUsers["42"] == knownHash)
        for spelling in ["y", "Y", "yes", "on", "TRUE", "!!bool true"] {
            #expect(try parse("http_server_config: {http2: \(spelling)}").http2, "\(spelling)")
        }
        #expect(try parse("http_server_config: {http2: n}").http2 == false)
        #expect(try parse("http_server_config: {http2: ~}").http2)
    }

    @Test func scalarAliasesAreAllowed() throws {
        let config = try parse("basic_auth_users:\n  alice: &h \(knownHash)\n  bob: *h\n")
        #expect(config.basicAuthUsers == ["alice": knownHash, "bob": knownHash])
    }

    @Test func unknownKeysAreNamedByPath() {
        let cases: [(String, String)] = [
            ("foo: 1", "foo: unknown key"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cert_fiel: x", "tls_server_config.cert_fiel: unknown key"),
            ("http_server_config:\n  http3: true", "http_server_config.http3: unknown key"),
            ("tls_server_config: {cert_file: c, key_file: k}\nbasic_auth: {}", "basic_auth: unknown key"),
            ("<<: {a: 1}", "<<: unknown key"),
            ("\"we\\u0007ird\": 1", "we?ird: unknown key"),
            ("'\(knownHash)': x", "<a key that looks like a password hash>: unknown key"),
            ("http_server_config:\n  '\(knownHash)': x", "http_server_config.<a key that looks like a password hash>: unknown key"),
        ]
        for (yaml, expected) in cases {
            #expect(failure(yaml)?.description == expected, "\(yaml)")
        }
    }

    @Test func unsupportedKeysAreRefusedWithAReason() {
        let cases: [(String, String)] = [
            ("rate_limit: {burst: 1}", "rate_limit"),
            ("tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_AES_128_GCM_SHA256]}", "tls_server_config.cipher_suites"),
            ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAnyClientCert, client_allowed_sans: [a]}",
             "tls_server_config.client_allowed_sans"),
            ("tls_server_config: {cert: c, key_file: k}", "tls_server_config.cert"),
            ("tls_server_config: {cert_file: c, key: k}", "tls_server_config.key"),
            ("tls_server_config: {cert_file: c, key_file: k, client_ca: x}", "tls_server_config.client_ca"),
        ]
        for (yaml, keyPath) in cases {
            let error = failure(yaml)
            #expect(error?.keyPath == keyPath, "\(yaml)")
            #expect(error?.problem.hasPrefix("not supported by prefect-exporter: ") == true, "\(yaml)")
        }
    }

    @Test func everyValidationErrorNamesItsKey() {
        let tls = "tls_server_config:\n  cert_file: c\n  key_file: k\n"
        let cases: [(String, String, String)] = [
            // (yaml, key path, start of the problem)
            ("tls_server_config:\n  key_file: k", "tls_server_config.cert_file", "required when tls_server_config is set"),
            ("tls_server_config:\n  cert_file: c", "tls_server_config.key_file", "required when tls_server_config is set"),
            ("tls_server_config:\n  min_version: TLS13", "tls_server_config.cert_file", "required"),
            ("tls_server_config: {cert_file: '', key_file: ''}", "tls_server_config.cert_file", "required"),
            (tls + "  client_auth_type: Foo", "tls_server_config.client_auth_type", "invalid value \"Foo\"; expected NoClientCert"),
            (tls + "  client_ca_file: ca.pem", "tls_server_config.client_ca_file", "set without client_auth_type"),
            (tls + "  client_auth_type: NoClientCert\n  client_ca_file: ca.pem", "tls_server_config.client_ca_file", "set without"),
            (tls + "  client_auth_type: VerifyClientCertIfGiven", "tls_server_config.client_ca_file", "required when client_auth_type"),
            (tls + "  client_auth_type: RequireAndVerifyClientCert", "tls_server_config.client_ca_file", "required when client_auth_type"),
            (tls + "  min_version: TLS14", "tls_server_config.min_version", "unknown TLS version \"TLS14\""),
            (tls + "  max_version: tls12", "tls_server_config.max_version", "unknown TLS version \"tls12\""),
            (tls + "  min_version: TLS13\n  max_version: TLS12", "tls_server_config.min_version", "TLS13 is above max_version TLS12"),
            (tls + "  curve_preferences: [X25519, P256]", "tls_server_config.curve_preferences[1]", "unknown curve \"P256\""),
            (tls + "  curve_preferences: X25519", "tls_server_config.curve_preferences", "expected a list of strings"),
            (tls + "  curve_preferences: [[X25519]]", "tls_server_config.curve_preferences[0]", "expected a string"),
            ("tls_server_config: {cert_file: [a], key_file: k}", "tls_server_config.cert_file", "expected a string, got a list"),
            (tls + "  prefer_server_cipher_suites: 1", "tls_server_config.prefer_server_cipher_suites", "expected true or false"),
            (tls + "  prefer_server_cipher_suites: \"true\"", "tls_server_config.prefer_server_cipher_suites", "expected true or false"),
            ("tls_server_config: [a]", "tls_server_config", "expected a mapping, got a list"),
            ("tls_server_config: yes", "tls_server_config", "expected a mapping, got a scalar"),
            ("http_server_config: 1", "http_server_config", "expected a mapping"),
            ("http_server_config: {http2: maybe}", "http_server_config.http2", "expected true or false"),
            ("http_server_config: {headers: [a]}", "http_server_config.headers", "expected a mapping"),
            ("http_server_config: {headers: {Content-Type: text/html}}", "http_server_config.headers.Content-Type",
             "this header cannot be configured"),
            ("http_server_config: {headers: {Authorization: x}}", "http_server_config.headers.Authorization", "this header cannot be"),
            ("http_server_config: {headers: {x-frame-options: deny}}", "http_server_config.headers.x-frame-options", "this header cannot be"),
            ("http_server_config: {headers: {X-Frame-Options: allow}}", "http_server_config.headers.X-Frame-Options",
             "invalid value; expected deny or sameorigin"),
            ("http_server_config: {headers: {X-Content-Type-Options: sniff}}", "http_server_config.headers.X-Content-Type-Options",
             "invalid value; expected nosniff"),
            ("http_server_config: {headers: {Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"}}",
             "http_server_config.headers.Content-Security-Policy", "the value must not contain control characters"),
            ("http_server_config: {headers: {X-XSS-Protection: {a: b}}}", "http_server_config.headers.X-XSS-Protection",
             "expected a string, got a mapping"),
            ("basic_auth_users: [alice]", "basic_auth_users", "expected a mapping, got a list"),
            ("basic_auth_users: {[a]: b}", "basic_auth_users", "keys must be strings"),
            ("basic_auth_users: {alice: [x]}", "basic_auth_users.alice", "expected a string"),
            ("basic_auth_users: {alice: }", "basic_auth_users.alice", "not a bcrypt hash"),
            ("basic_auth_users: {alice: plaintext}", "basic_auth_users.alice", "not a bcrypt hash"),
            ("basic_auth_users: {alice: '$1$abc$defghijklmnopqrstuvwxy'}", "basic_auth_users.alice", "not a bcrypt hash"),
            ("basic_auth_users: {alice: '\(knownHash.replacingOccurrences(of: "$05$", with: "$03$"))'}", "basic_auth_users.alice",
             "bcrypt cost 3 is outside the allowed range 4 to 31"),
            ("basic_auth_users: {alice: '\(knownHash.replacingOccurrences(of: "$05$", with: "$32$"))'}", "basic_auth_users.alice",
             "bcrypt cost 32 is outside"),
            ("basic_auth_users: {alice: '\(knownHash.replacingOccurrences(of: "$2y$", with: "$2x$"))'}", "basic_auth_users.alice",
             "not a bcrypt hash"),
            ("basic_auth_users: {alice: '\(knownHash.dropLast())'}", "basic_auth_users.alice", "not a bcrypt hash"),
            ("basic_auth_users: {alice: '\(knownHash.dropLast())!'}", "basic_auth_users.alice", "not a bcrypt hash"),
            ("[1, 2]", "", "expected a mapping at the top level, got a list"),
            ("just text", "", "expected a mapping at the top level, got a scalar"),
        ]
        for (yaml, keyPath, problem) in cases {
            let error = failure(yaml)
            #expect(error?.keyPath == keyPath, "\(yaml)")
            #expect(error?.problem.hasPrefix(problem) == true, "\(yaml): \(error?.problem ?? "no error")")
        }
    }

    @Test func yamlErrorsHaveAPositionAndNoSnippet() {
        let secret = "$2y$10$thisLooksLikeAHashThatMustNeverBeShownInAnErrorMessage12"
        let cases: [(String, String)] = [
            ("basic_auth_users:\n  alice: \(secret)\n bob: x", "invalid YAML at line 3"),
            ("basic_auth_users: {alice: \"\(secret)", "invalid YAML at line 1"),
            ("a: 1\na: 2", "invalid YAML at line 1: duplicate key 'a'"),
            ("basic_auth_users:\n  alice: \(knownHash)\n  alice: \(secret)", "invalid YAML at line 2: duplicate key 'alice'"),
            ("a: 1\n---\nb: 2", "invalid YAML at line"),
            ("a: *nowhere", "invalid YAML at line 1"),
            ("\t- a", "invalid YAML"),
        ]
        for (yaml, start) in cases {
            let error = failure(yaml)
            #expect(error?.keyPath == "", "\(yaml)")
            #expect(error?.problem.hasPrefix(start) == true, "\(yaml): \(error?.problem ?? "no error")")
            #expect(error?.description.contains(secret) == false)
            #expect(error?.description.contains("\n") == false)
        }
    }

    @Test func hostileYAMLIsRefusedCheaply() {
        // Billion laughs: aliases of collections are refused before Yams expands them.
        var laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        var previous = "a"
        for level in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            laughs += "\(level): &\(level) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
            previous = level
        }
        laughs += "? *i\n: 1\n"
        #expect(failure(laughs)?.problem.contains("aliases of mappings or lists are not supported") == true)
        // A collection anchor re-bound to a scalar inside it, then used after it ends, is still a collection.
        #expect(failure("a: &x [&x s, *x]\nb: *x\n")?.problem.contains("aliases of mappings or lists") == true)
        #expect(failure("a: &x {k: v}\n<<: *x\n")?.problem.contains("aliases of mappings or lists") == true)
        // Deep nesting would overflow the stack of a recursive composer.
        let deep = String(repeating: "[", count: 100_000)
        // (libyaml's own limit of 1000 levels trips first on one long line of '['; either way it is refused.)
        let deepProblem = failure(deep)?.problem ?? ""
        #expect(deepProblem.contains("nested deeper than 32 levels") || deepProblem.contains("Maximum nesting level"), "\(deepProblem)")
        let block = (0..<40).map { String(repeating: " ", count: $0 * 2) + "k\($0):" }.joined(separator: "\n") + " 1"
        #expect(failure(block)?.problem.contains("nested deeper than 32 levels") == true, "\(failure(block)?.problem ?? "")")
        #expect(failure(String(repeating: "{a: ", count: 40) + "1" + String(repeating: "}", count: 40))?.problem
            .contains("nested deeper") == true)
        // Size and encoding.
        #expect(failure(String(repeating: "#", count: WebConfig.maximumFileSize + 1))?.problem.contains("larger than") == true)
        #expect((try? WebConfig.parse([0x61, 0x3A, 0x20, 0xFF, 0xFE])) == nil)
        #expect(failure("a: \u{0}")?.problem.hasPrefix("invalid YAML") == true)
    }

    @Test func descriptionsHideHashes() throws {
        let config = try parse("basic_auth_users: {alice: '\(knownHash)'}\nhttp_server_config: {headers: {X-Frame-Options: deny}}")
        for text in ["\(config)", String(reflecting: config), { var out = ""; dump(config, to: &out); return out }()] {
            #expect(!text.contains(knownHash))
            #expect(!text.contains("CCCCCCCC"))
            #expect(text.contains("basic_auth_users=1"))
        }
    }
}
