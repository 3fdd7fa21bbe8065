// libFuzzer entry point for the web configuration parser (the WebConfig module, Sources/WebConfig,
// compiled into this binary by build.sh together with Yams and libyaml).
//
// Beyond "never crashes, never hangs", it checks the parser's promises on every input:
// errors are one line and never show something that looks like a bcrypt hash; accepted
// configurations are internally consistent and their descriptions show no hash either; and
// whatever libyaml's own events show to be too deep or an alias of a collection (the
// LibyamlOracle) is refused by the prescan before Yams composes it.

import WebConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func webConfigFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // What reaches the prescan: at most the size limit, valid UTF-8.
    let oracle = bytes.count <= WebConfig.maximumFileSize && String(validating: bytes, as: UTF8.self) != nil
        ? LibyamlOracle.problem(in: bytes) : nil
    do {
        let config = try WebConfig.parse(bytes, baseDirectory: "/etc/prefect-exporter")
        require(oracle == nil, "accepted YAML whose libyaml events show a problem: \(oracle ?? "")")
        check(config)
    } catch {
        let text = error.description
        require(!text.contains(where: \.isNewline), "multi-line error: \(text)")
        require(!WebConfig.looksLikeHash(text), "an error shows a password hash")
        require(!text.isEmpty, "empty error")
        if let oracle {
            let prescanned = error.problem.contains("nested deeper than") || error.problem.contains("aliases of mappings or lists")
            require(prescanned, "libyaml's events show a problem (\(oracle)) that the prescan let through: \(text)")
        }
    }
    return 0
}

private func check(_ config: WebConfig) {
    for (_, hash) in config.basicAuthUsers {
        require(BcryptHash.problem(with: hash) == nil, "accepted a malformed hash")
    }
    for (name, value) in config.headers {
        guard let allowed = WebConfig.configurableHeaders[name] else { fatalError("accepted header \(name)") }
        require(allowed.isEmpty || allowed.contains(value), "accepted a bad value for \(name)")
        // No line break (header injection) and no other control character but tab.
        require(!value.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }, "header injection")
    }
    if let tls = config.tlsServer {
        require(!tls.certFile.isEmpty && !tls.keyFile.isEmpty, "TLS without certificate or key")
        require(tls.minVersion <= tls.maxVersion, "min_version above max_version")
        require(!tls.clientAuthType.verifiesCertificate || tls.clientCAFile != nil, "verification without CA")
        require(tls.clientAuthType != .noClientCert || tls.clientCAFile == nil, "CA without client auth")
        let priorities = tls.gnutlsPriorities
        require(priorities.hasPrefix("NORMAL:-VERS-ALL:+VERS-TLS1."), "bad priority string \(priorities)")
        for path in [tls.certFile, tls.keyFile] + (tls.clientCAFile.map { [$0] } ?? []) {
            require(path.hasPrefix("/"), "relative path left unresolved: \(path)")
        }
    }
    for text in [config.description, String(reflecting: config)] {
        require(!WebConfig.looksLikeHash(text), "a description shows a password hash")
    }
}
