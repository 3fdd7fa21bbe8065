import Foundation
import Testing
import WebServer

/// `promtool check web-config` (exporter-toolkit's own validation) against ours, file by file:
/// we accept exactly what promtool accepts, except for the listed cases where we are stricter on
/// purpose (each would otherwise silently weaken security or can never work).
private struct Case: Sendable, CustomStringConvertible {
    enum Expectation: Sendable { case bothAccept, bothReject, onlyPromtoolAccepts(why: String) }
    let name: String
    let yaml: String
    let expectation: Expectation
    var description: String { name }
}

private let tls = "tls_server_config:\n  cert_file: ../server.pem\n  key_file: ../server.key\n"
private let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

private let cases: [Case] = [
    // Accepted by both.
    Case(name: "empty", yaml: "", expectation: .bothAccept),
    Case(name: "null blocks", yaml: "tls_server_config:\nbasic_auth_users: ~\nhttp_server_config: {}\n", expectation: .bothAccept),
    Case(name: "basic auth", yaml: "basic_auth_users:\n  alice: \(hash)\n  bob: '\(knownHash)'\n", expectation: .bothAccept),
    Case(name: "tls", yaml: tls, expectation: .bothAccept),
    Case(name: "tls rsa", yaml: "tls_server_config: {cert_file: ../rsa-server.pem, key_file: ../rsa-server.key}", expectation: .bothAccept),
    Case(name: "mtls", yaml: tls + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../ca.pem\n", expectation: .bothAccept),
    Case(name: "verify if given", yaml: tls + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ../ca.pem\n", expectation: .bothAccept),
    Case(name: "require any", yaml: tls + "  client_auth_type: RequireAnyClientCert\n", expectation: .bothAccept),
    Case(name: "require (old name)", yaml: tls + "  client_auth_type: RequireClientCert\n", expectation: .bothAccept),
    Case(name: "request with CA", yaml: tls + "  client_auth_type: RequestClientCert\n  client_ca_file: ../ca.pem\n", expectation: .bothAccept),
    Case(name: "versions", yaml: tls + "  min_version: TLS12\n  max_version: TLS12\n", expectation: .bothAccept),
    Case(name: "tls13", yaml: tls + "  min_version: TLS13\n", expectation: .bothAccept),
    Case(name: "tls10", yaml: tls + "  min_version: TLS10\n", expectation: .bothAccept),
    Case(name: "curves", yaml: tls + "  curve_preferences: [X25519, CurveP256, CurveP384, CurveP521]\n", expectation: .bothAccept),
    Case(name: "server preference", yaml: tls + "  prefer_server_cipher_suites: false\n", expectation: .bothAccept),
    Case(name: "empty cipher list", yaml: tls + "  cipher_suites: []\n", expectation: .bothAccept),
    Case(name: "headers and http2",
         yaml: "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: sameorigin\n    X-Content-Type-Options: nosniff\n"
            + "    Content-Security-Policy: default-src 'self'\n    X-XSS-Protection: '1; mode=block'\n"
            + "    Strict-Transport-Security: max-age=1\n",
         expectation: .bothAccept),
    Case(name: "yaml 1.1 bool", yaml: "http_server_config: {http2: y}", expectation: .bothAccept),
    Case(name: "scalar alias", yaml: "basic_auth_users:\n  a: &h \(hash)\n  b: *h\n", expectation: .bothAccept),
    Case(name: "empty user name", yaml: "basic_auth_users: {'': \(hash)}", expectation: .bothAccept),

    // Rejected by both.
    Case(name: "unknown key", yaml: "foo: 1", expectation: .bothReject),
    Case(name: "misspelt tls key", yaml: tls + "  cert_fiel: x\n", expectation: .bothReject),
    Case(name: "missing key_file", yaml: "tls_server_config:\n  cert_file: ../server.pem\n", expectation: .bothReject),
    Case(name: "missing cert_file", yaml: "tls_server_config:\n  key_file: ../server.key\n", expectation: .bothReject),
    Case(name: "client auth without cert", yaml: "tls_server_config:\n  client_auth_type: NoClientCert\n", expectation: .bothReject),
    Case(name: "bad client auth", yaml: tls + "  client_auth_type: Foo\n", expectation: .bothReject),
    Case(name: "CA without client auth", yaml: tls + "  client_ca_file: ../ca.pem\n", expectation: .bothReject),
    Case(name: "bad version", yaml: tls + "  min_version: TLS14\n", expectation: .bothReject),
    Case(name: "bad curve", yaml: tls + "  curve_preferences: [P256]\n", expectation: .bothReject),
    Case(name: "bad cipher", yaml: tls + "  cipher_suites: [NOPE]\n", expectation: .bothReject),
    Case(name: "cert file missing", yaml: "tls_server_config: {cert_file: nope.pem, key_file: ../server.key}", expectation: .bothReject),
    Case(name: "key mismatch", yaml: "tls_server_config: {cert_file: ../server.pem, key_file: ../client.key}", expectation: .bothReject),
    Case(name: "header not allowed", yaml: "http_server_config: {headers: {Content-Type: text/html}}", expectation: .bothReject),
    Case(name: "header lowercase", yaml: "http_server_config: {headers: {x-frame-options: deny}}", expectation: .bothReject),
    Case(name: "header bad value", yaml: "http_server_config: {headers: {X-Frame-Options: allow}}", expectation: .bothReject),
    Case(name: "quoted bool", yaml: "http_server_config: {http2: \"yes\"}", expectation: .bothReject),
    Case(name: "int bool", yaml: "http_server_config: {http2: 1}", expectation: .bothReject),
    Case(name: "list for string", yaml: "tls_server_config: {cert_file: [../server.pem], key_file: ../server.key}", expectation: .bothReject),
    Case(name: "not a hash", yaml: "basic_auth_users: {alice: notahash}", expectation: .bothReject),
    Case(name: "null hash", yaml: "basic_auth_users: {alice: }", expectation: .bothReject),
    Case(name: "cost 3", yaml: "basic_auth_users: {alice: '$2y$03$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'}", expectation: .bothReject),
    Case(name: "duplicate key", yaml: "basic_auth_users:\n  a: \(hash)\n  a: \(hash)\n", expectation: .bothReject),
    Case(name: "client_allowed_sans (newer toolkit)",
         yaml: tls + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../ca.pem\n  client_allowed_sans: [a]\n",
         expectation: .bothReject),
    Case(name: "rate_limit (newer toolkit)", yaml: "rate_limit: {burst: 1, interval: 1s}", expectation: .bothReject),
    Case(name: "inline cert (newer toolkit)", yaml: "tls_server_config: {cert: x, key_file: ../server.key}", expectation: .bothReject),
    Case(name: "merge key", yaml: "base: &b {cert_file: ../server.pem}\ntls_server_config:\n  <<: *b\n", expectation: .bothReject),

    // Deliberately stricter than exporter-toolkit.
    Case(name: "tls settings without certificate", yaml: "tls_server_config:\n  min_version: TLS13\n",
         expectation: .onlyPromtoolAccepts(why: "exporter-toolkit silently serves plain HTTP")),
    Case(name: "verify without CA", yaml: tls + "  client_auth_type: RequireAndVerifyClientCert\n",
         expectation: .onlyPromtoolAccepts(why: "Go would verify client certificates against the system's CAs")),
    Case(name: "CA file without certificates",
         yaml: tls + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../client.ext\n",
         expectation: .onlyPromtoolAccepts(why: "no client could ever connect")),
    Case(name: "min above max", yaml: tls + "  min_version: TLS13\n  max_version: TLS12\n",
         expectation: .onlyPromtoolAccepts(why: "no TLS version is left")),
    Case(name: "cipher suites", yaml: tls + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
         expectation: .onlyPromtoolAccepts(why: "GnuTLS cannot enforce the list, and ignoring it would accept excluded ciphers")),
    Case(name: "hash with bad characters", yaml: "basic_auth_users: {a: '$2y$10$\(String(repeating: "!", count: 53))'}",
         expectation: .onlyPromtoolAccepts(why: "can never match")),
    Case(name: "$2x$ hash", yaml: "basic_auth_users: {a: '$2x$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'}",
         expectation: .onlyPromtoolAccepts(why: "crypt_blowfish's buggy variant, which Go does not implement either")),
    Case(name: "control characters in a header", yaml: "http_server_config: {headers: {Content-Security-Policy: \"a\\r\\nb\"}}",
         expectation: .onlyPromtoolAccepts(why: "header injection")),
    Case(name: "second document", yaml: "basic_auth_users: {}\n---\nfoo: 1\n",
         expectation: .onlyPromtoolAccepts(why: "Go reads only the first document and ignores the rest")),
]

private let promtool = findExecutable("promtool")

@Suite("promtool check web-config agreement", .enabled(if: promtool != nil && (try? TestPKI.get()) != nil, "needs promtool and openssl"))
struct PromtoolAgreementTests {
    @Test(arguments: cases)
    fileprivate func agreesWithPromtool(_ testCase: Case) throws {
        let file = try TestPKI.get().write("web.yml", testCase.yaml)
        let checked = try runProgram(try #require(promtool), ["check", "web-config", file])
        let promtoolAccepts = checked.status == 0
        let ours: String?
        do {
            _ = try WebSecurity.load(configFile: file)
            ours = nil
        } catch {
            ours = "\(error)"
        }
        switch testCase.expectation {
        case .bothAccept:
            #expect(promtoolAccepts, "promtool: \(checked.stdout) \(checked.stderr)")
            #expect(ours == nil, "ours: \(ours ?? "")")
        case .bothReject:
            #expect(!promtoolAccepts, "promtool accepted it")
            #expect(ours != nil, "we accepted it")
        case .onlyPromtoolAccepts(let why):
            #expect(promtoolAccepts, "promtool: \(checked.stdout) \(checked.stderr)")
            #expect(ours != nil, "we should refuse it: \(why)")
        }
        // Whatever the outcome, an error message never quotes a password hash.
        #expect(ours?.contains(hash) != true)
        #expect(ours?.contains(knownHash) != true)
    }
}
