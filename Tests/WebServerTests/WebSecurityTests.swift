import Foundation
import Testing
import WebConfig
@testable import WebServer

/// A server answering `200 ok <path>` to everything, configured by a web config file written
/// next to the test PKI (so `../server.pem` names the server certificate).
private func startServer(_ yaml: String) throws -> WebServer {
    let pki = try TestPKI.get()
    let security = try WebSecurity.load(configFile: try pki.write("web.yml", yaml))
    let configuration = WebServerConfiguration(listenAddress: "127.0.0.1:0", security: security)
    return try WebServer(configuration: configuration) { request in
        Response(status: 200, contentType: "text/plain; charset=utf-8", body: ResponseBody("ok \(request.path)\n"))
    }
}

private func loadError(_ yaml: String) throws -> WebConfigError? {
    let file = try TestPKI.get().write("web.yml", yaml)
    do {
        _ = try WebSecurity.load(configFile: file)
        return nil
    } catch {
        return error
    }
}

private let serverTLS = "tls_server_config:\n  cert_file: ../server.pem\n  key_file: ../server.key\n"
private let pkiAvailable = (try? TestPKI.get()) != nil && findExecutable("curl") != nil

private func basic(_ user: String, _ password: String) -> String {
    "Authorization: Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
}

@Suite("Web security: TLS, client certificates, basic auth", .enabled(if: pkiAvailable, "needs openssl and curl"))
struct WebSecurityTests {
    let pki: TestPKI
    init() throws { pki = try TestPKI.get() }

    private func url(_ server: WebServer, _ path: String = "/metrics") -> String { "https://127.0.0.1:\(server.port)\(path)" }

    @Test func tlsWithTheRightCA() throws {
        let server = try startServer(serverTLS)
        defer { server.stop() }
        let good = try curl(url(server), ["--cacert", pki.path("ca.pem")])
        #expect(good.exitStatus == 0, "\(good.stderr)")
        #expect(good.httpStatus == 200)
        #expect(good.body == "ok /metrics\n")
        let byName = try curl("https://localhost:\(server.port)/", ["--cacert", pki.path("ca.pem"), "--resolve", "localhost:\(server.port):127.0.0.1"])
        #expect(byName.httpStatus == 200, "\(byName.stderr)")
    }

    @Test func tlsFailsWithAWrongCAOrASelfSignedCertificate() throws {
        let server = try startServer(serverTLS)
        defer { server.stop() }
        let wrongCA = try curl(url(server), ["--cacert", pki.path("other-ca.pem")])
        #expect(wrongCA.exitStatus == 60, "\(wrongCA.stderr)")  // peer certificate cannot be authenticated
        let systemCAs = try curl(url(server))
        #expect(systemCAs.exitStatus == 60, "\(systemCAs.stderr)")

        let selfSigned = try startServer("tls_server_config:\n  cert_file: ../self-signed.pem\n  key_file: ../self-signed.key\n")
        defer { selfSigned.stop() }
        let untrusted = try curl(url(selfSigned), ["--cacert", pki.path("ca.pem")])
        #expect(untrusted.exitStatus == 60, "\(untrusted.stderr)")
        let pinned = try curl(url(selfSigned), ["--cacert", pki.path("self-signed.pem")])
        #expect(pinned.httpStatus == 200, "\(pinned.stderr)")
    }

    @Test func plainHTTPIsNotServedOnATLSPort() throws {
        let server = try startServer(serverTLS)
        defer { server.stop() }
        let plain = try curl("http://127.0.0.1:\(server.port)/metrics")
        #expect(plain.exitStatus != 0)
        #expect(plain.httpStatus == nil)
    }

    @Test func rsaKeysWork() throws {
        let server = try startServer("tls_server_config:\n  cert_file: ../rsa-server.pem\n  key_file: ../rsa-server.key\n")
        defer { server.stop() }
        #expect(try curl(url(server), ["--cacert", pki.path("ca.pem")]).httpStatus == 200)
    }

    @Test func minAndMaxVersionsAreEnforced() throws {
        let tls13 = try startServer(serverTLS + "  min_version: TLS13\n")
        defer { tls13.stop() }
        let old = try curl(url(tls13), ["--cacert", pki.path("ca.pem"), "--tls-max", "1.2"])
        #expect(old.exitStatus == 35, "\(old.stderr)")  // handshake failure
        #expect(try curl(url(tls13), ["--cacert", pki.path("ca.pem"), "--tlsv1.3"]).httpStatus == 200)

        let tls12 = try startServer(serverTLS + "  max_version: TLS12\n  curve_preferences: [CurveP384, X25519]\n")
        defer { tls12.stop() }
        let new = try curl(url(tls12), ["--cacert", pki.path("ca.pem"), "--tlsv1.3"])
        #expect(new.exitStatus == 35, "\(new.stderr)")
        let twelve = try curl(url(tls12), ["--cacert", pki.path("ca.pem"), "--tls-max", "1.2", "-v"])
        #expect(twelve.httpStatus == 200, "\(twelve.stderr)")
        #expect(twelve.stderr.contains("TLSv1.2"))
    }

    @Test(arguments: ["1.2", "1.3"])
    func requireAndVerifyClientCert(tlsVersion: String) throws {
        let server = try startServer(serverTLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../ca.pem\n")
        defer { server.stop() }
        let base = ["--cacert", pki.path("ca.pem"), "--tls-max", tlsVersion] + (tlsVersion == "1.3" ? ["--tlsv1.3"] : [])
        let none = try curl(url(server), base)
        #expect(none.exitStatus == 0 && none.httpStatus == 403, "\(none.stderr)")
        let wrong = try curl(url(server), base + ["--cert", pki.path("other-client.pem"), "--key", pki.path("other-client.key")])
        #expect(wrong.httpStatus == 403 || wrong.exitStatus != 0, "\(wrong.stderr)")
        #expect(wrong.httpStatus != 200)
        let purpose = try curl(url(server), base + ["--cert", pki.path("wrong-purpose.pem"), "--key", pki.path("wrong-purpose.key")])
        #expect(purpose.httpStatus == 403, "a certificate without clientAuth usage: \(purpose.stderr)")
        let good = try curl(url(server), base + ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")])
        #expect(good.httpStatus == 200, "\(good.stderr)")
        #expect(good.body == "ok /metrics\n")
    }

    @Test func verifyClientCertIfGiven() throws {
        let server = try startServer(serverTLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ../ca.pem\n")
        defer { server.stop() }
        let base = ["--cacert", pki.path("ca.pem")]
        #expect(try curl(url(server), base).httpStatus == 200)
        #expect(try curl(url(server), base + ["--cert", pki.path("other-client.pem"), "--key", pki.path("other-client.key")]).httpStatus == 403)
        #expect(try curl(url(server), base + ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]).httpStatus == 200)
    }

    @Test func requireAnyClientCertWithoutCA() throws {
        let server = try startServer(serverTLS + "  client_auth_type: RequireAnyClientCert\n")
        defer { server.stop() }
        let base = ["--cacert", pki.path("ca.pem")]
        #expect(try curl(url(server), base).httpStatus == 403)
        // Any certificate will do, even one from an unknown CA (that is what RequireAnyClientCert means).
        #expect(try curl(url(server), base + ["--cert", pki.path("other-client.pem"), "--key", pki.path("other-client.key")]).httpStatus == 200)
        let request = try startServer(serverTLS + "  client_auth_type: RequestClientCert\n")
        defer { request.stop() }
        #expect(try curl(url(request), base).httpStatus == 200)
    }

    @Test func basicAuthOverTLSWithHeaders() throws {
        let server = try startServer(
            serverTLS + """
                basic_auth_users:
                  alice: '\(knownHash)'
                http_server_config:
                  headers:
                    X-Frame-Options: deny
                    Strict-Transport-Security: max-age=63072000
                """)
        defer { server.stop() }
        let base = ["--cacert", pki.path("ca.pem")]
        let good = try curl(url(server), base + ["-u", "alice:U*U"])
        #expect(good.httpStatus == 200, "\(good.stderr)")
        #expect(good.header("X-Frame-Options") == "deny")
        #expect(good.header("Strict-Transport-Security") == "max-age=63072000")
        for arguments in [["-u", "alice:wrong"], ["-u", "bob:U*U"], []] {
            let refused = try curl(url(server), base + arguments)
            #expect(refused.httpStatus == 401, "\(arguments)")
            #expect(refused.header("WWW-Authenticate") == "Basic realm=\"prefect-exporter\"")
            #expect(refused.header("X-Frame-Options") == "deny")
            #expect(refused.body == "401 Unauthorized\n")
        }
        // Every path is protected, health checks included (as in exporter-toolkit).
        #expect(try curl(url(server, "/-/healthy"), base).httpStatus == 401)
        #expect(try curl(url(server, "/-/healthy"), base + ["-u", "alice:U*U"]).httpStatus == 200)
    }

    @Test func mutualTLSAndBasicAuthTogether() throws {
        let server = try startServer(
            serverTLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../ca.pem\n"
                + "basic_auth_users:\n  alice: '\(knownHash)'\n")
        defer { server.stop() }
        let cert = ["--cacert", pki.path("ca.pem"), "--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
        #expect(try curl(url(server), cert).httpStatus == 401)
        #expect(try curl(url(server), cert + ["-u", "alice:U*U"]).httpStatus == 200)
        // The certificate is checked first: good credentials do not make up for a missing certificate.
        #expect(try curl(url(server), ["--cacert", pki.path("ca.pem"), "-u", "alice:U*U"]).httpStatus == 403)
    }

    @Test func basicAuthOverPlainHTTP() throws {
        let server = try startServer("basic_auth_users:\n  alice: '\(knownHash)'\nhttp_server_config:\n  headers: {X-Content-Type-Options: nosniff}\n")
        defer { server.stop() }
        let refused = try TestHTTP.request(port: server.port, path: "/metrics")
        #expect(refused.status == 401)
        #expect(refused.header("WWW-Authenticate") == "Basic realm=\"prefect-exporter\"")
        #expect(refused.header("X-Content-Type-Options") == "nosniff")
        #expect(try TestHTTP.request(port: server.port, path: "/metrics", headers: [basic("alice", "nope")]).status == 401)
        let good = try TestHTTP.request(port: server.port, path: "/metrics", headers: [basic("alice", "U*U")])
        #expect(good.status == 200)
        #expect(good.text == "ok /metrics\n")
        #expect(good.header("X-Content-Type-Options") == "nosniff")
        let head = try TestHTTP.request(port: server.port, method: "HEAD", path: "/x")
        #expect(head.status == 401 && head.body.isEmpty)
    }

    @Test func loadErrorsNameTheKeyAndTheFile() throws {
        let cases: [(String, String)] = [
            (serverTLS.replacingOccurrences(of: "../server.pem", with: "../missing.pem"), "tls_server_config.cert_file: cannot read "),
            (serverTLS.replacingOccurrences(of: "../server.key", with: "../missing.key"), "tls_server_config.key_file: cannot read "),
            (serverTLS.replacingOccurrences(of: "../server.key", with: "../client.key"),
             "tls_server_config.key_file: the key does not match the certificate in cert_file"),
            (serverTLS.replacingOccurrences(of: "../server.key", with: "../encrypted.key"),
             "tls_server_config.key_file: no usable unencrypted PEM private key"),
            (serverTLS.replacingOccurrences(of: "../server.pem", with: "../server.key"), "tls_server_config.cert_file: no PEM certificate"),
            (serverTLS.replacingOccurrences(of: "../server.key", with: "../server.pem"), "tls_server_config.key_file: no usable"),
            (serverTLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../client.ext\n",
             "tls_server_config.client_ca_file: no PEM certificate in it"),
            (serverTLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../nothing-here.pem\n",
             "tls_server_config.client_ca_file: cannot read "),
            (serverTLS + "  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file: required when"),
        ]
        for (yaml, expected) in cases {
            let error = try loadError(yaml)
            let text = error.map { "\($0)" } ?? "no error"
            #expect(error?.file?.hasSuffix("/web.yml") == true, "\(yaml)")
            #expect(text.contains(": " + expected), "\(yaml): \(text)")
            #expect(!text.contains("BEGIN"), "no PEM content in errors")
        }
        do {
            _ = try WebSecurity.load(configFile: "/nonexistent/web.yml")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "/nonexistent/web.yml: cannot read /nonexistent/web.yml: no such file or directory")
        }
    }

    @Test func descriptionsHideTheKeyAndHashes() throws {
        let security = try WebSecurity.load(configFile: try pki.write("web.yml", serverTLS + "basic_auth_users: {alice: '\(knownHash)'}\n"))
        let key = try String(contentsOfFile: pki.path("server.key"), encoding: .utf8)
        let keyLine = try #require(key.split(separator: "\n").dropFirst().first)
        var dumped = ""
        dump(security, to: &dumped)
        for text in ["\(security)", String(reflecting: security), dumped, "\(WebServerConfiguration(security: security))"] {
            #expect(!text.contains(knownHash))
            #expect(!text.contains(keyLine))
            #expect(!text.contains("PRIVATE KEY"))
        }
    }
}
