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

    /// Creates an error for the key at `keyPath`; `file` is usually filled in by whoever read the file.
    public init(file: String? = nil, keyPath: String, problem: String) {
        self.file = file
        self.keyPath = keyPath
        self.problem = problem
    }

    /// `file: key.path: problem` on one line.
    public var description: String {
        var text = keyPath.isEmpty ? problem : "\(keyPath): \(problem)"
        if let file { text = "\(file): \(text)" }
        // One line, whatever came in.
        return String(text.map { $0.isNewline ? " " : $0 })
    }
}
