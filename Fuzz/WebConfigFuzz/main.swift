// libFuzzer entry point for the web configuration parser (Sources/WebServer/WebConfig.swift and
// YAMLPrescan.swift, compiled into this binary by build.sh together with Yams and libyaml).
//
// Beyond "never crashes, never hangs", it checks the parser's promises on every input:
// errors are one line and never show something that looks like a bcrypt hash; accepted
// configurations are internally consistent and their descriptions show no hash either.

@_cdecl("LLVMFuzzerTestOneInput")
public func webConfigFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        let config = try WebConfig.parse(bytes, baseDirectory: "/etc/prefect-exporter")
        check(config)
    } catch {
        let text = error.description
        precondition(!text.contains(where: \.isNewline), "multi-line error: \(text)")
        precondition(!WebConfig.looksLikeHash(text), "an error shows a password hash")
        precondition(!text.isEmpty, "empty error")
    }
    return 0
}

private func check(_ config: WebConfig) {
    for (_, hash) in config.basicAuthUsers {
        precondition(BcryptHash.problem(with: hash) == nil, "accepted a malformed hash")
    }
    for (name, value) in config.headers {
        let allowed = WebConfig.configurableHeaders[name]
        precondition(allowed != nil, "accepted header \(name)")
        precondition(allowed!.isEmpty || allowed!.contains(value), "accepted a bad value for \(name)")
        precondition(!value.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\u{0}" }, "header injection")
    }
    if let tls = config.tlsServer {
        precondition(!tls.certFile.isEmpty && !tls.keyFile.isEmpty, "TLS without certificate or key")
        precondition(tls.minVersion <= tls.maxVersion, "min_version above max_version")
        precondition(!tls.clientAuthType.verifiesCertificate || tls.clientCAFile != nil, "verification without CA")
        precondition(tls.clientAuthType != .noClientCert || tls.clientCAFile == nil, "CA without client auth")
        let priorities = tls.gnutlsPriorities
        precondition(priorities.hasPrefix("NORMAL:-VERS-ALL:+VERS-TLS1."), "bad priority string \(priorities)")
        for path in [tls.certFile, tls.keyFile] + (tls.clientCAFile.map { [$0] } ?? []) {
            precondition(path.hasPrefix("/"), "relative path left unresolved: \(path)")
        }
    }
    for text in [config.description, String(reflecting: config)] {
        precondition(!WebConfig.looksLikeHash(text), "a description shows a password hash")
    }
}
