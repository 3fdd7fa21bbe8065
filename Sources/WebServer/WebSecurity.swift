public import WebConfig
import Glibc

/// A web configuration file (`--web.config.file`) loaded for the server: the parsed
/// ``WebConfig`` plus the certificate, key and client CA it names, read and checked with
/// GnuTLS at start-up. Nothing is re-read later: changes to the file or to the certificates
/// take effect on restart.
///
/// Its descriptions and mirror show a summary only: never the key or a password hash.
public struct WebSecurity: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration file as given.
    public let configFile: String
    /// The parsed configuration.
    public let config: WebConfig
    /// The TLS material; nil for plain HTTP.
    let tls: TLSMaterial?

    /// Whether the server speaks HTTPS.
    public var isTLSEnabled: Bool { tls != nil }

    /// Reads, parses and checks a web configuration file and everything it names.
    ///
    /// - Throws: ``WebConfigError`` (with ``WebConfigError/file`` set) naming the key at fault.
    public static func load(configFile path: String) throws(WebConfigError) -> WebSecurity {
        do {
            let bytes = try readFile(path, keyPath: "")
            let config = try WebConfig.parse(bytes, baseDirectory: directory(of: path))
            let tls = try config.tlsServer.map { settings throws(WebConfigError) in try TLSMaterial.load(settings) }
            return WebSecurity(configFile: path, config: config, tls: tls)
        } catch {
            var located = error
            located.file = path
            throw located
        }
    }

    /// Makes a configuration from an already parsed file (for tests); loads the TLS files it names.
    public init(config: WebConfig, configFile: String = "<memory>") throws(WebConfigError) {
        self.configFile = configFile
        self.config = config
        self.tls = try config.tlsServer.map { settings throws(WebConfigError) in try TLSMaterial.load(settings) }
    }

    private init(configFile: String, config: WebConfig, tls: TLSMaterial?) {
        self.configFile = configFile
        self.config = config
        self.tls = tls
    }

    public var description: String { "\(config) from \(configFile)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["summary": description]) }

    /// The directory of a file path, as exporter-toolkit's `filepath.Dir`: "." for a bare name.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    static func readFile(_ path: String, keyPath: String) throws(WebConfigError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw WebConfigError(keyPath: keyPath, problem: "cannot read \(path): \(errnoMessage(errno))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw WebConfigError(keyPath: keyPath, problem: "cannot read \(path): \(errnoMessage(errno))")
            }
            bytes.append(contentsOf: buffer[0..<count])
            guard bytes.count <= 16 * 1024 * 1024 else {
                throw WebConfigError(keyPath: keyPath, problem: "\(path) is larger than 16 MiB")
            }
        }
        wipe(&buffer)
        return bytes
    }
}
