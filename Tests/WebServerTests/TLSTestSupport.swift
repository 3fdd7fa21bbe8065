import Foundation

/// The result of running a program.
struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a program to completion (no shell), with its standard input closed.
func runProgram(_ executable: String, _ arguments: [String], directory: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so that neither fills up and blocks the child.
    let errorData = LockedData()
    let reader = Thread { errorData.set(stderr.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errorData.isSet { Thread.sleep(forTimeInterval: 0.001) }
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
        stderr: String(decoding: errorData.value, as: UTF8.self))
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return data != nil }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data ?? Data() }
}

/// The first executable of that name on PATH (or in the usual directories).
func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"] {
        let candidate = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// A throwaway PKI made with openssl at test time, once per test process:
///
/// - `ca.pem`/`ca.key`: the CA of the server and of the good client;
/// - `server.pem`/`server.key`: EC P-256, CN and SAN localhost and 127.0.0.1, serverAuth;
/// - `rsa-server.pem`/`rsa-server.key`: the same with RSA 2048;
/// - `client.pem`/`client.key`: clientAuth, issued by `ca`;
/// - `wrong-purpose.pem`/`.key`: issued by `ca` but for serverAuth only;
/// - `other-ca.pem`, `other-client.pem`/`.key`: a second CA and a client it issued;
/// - `self-signed.pem`/`.key`: a self-signed server certificate;
/// - `encrypted.key`: `server.key` encrypted with a password.
final class TestPKI: Sendable {
    let directory: String

    /// nil (with the reason) when openssl is missing or fails.
    static let shared: Result<TestPKI, TestClientError> = {
        do {
            return .success(try TestPKI())
        } catch let error as TestClientError {
            return .failure(error)
        } catch {
            return .failure(TestClientError(description: "\(error)"))
        }
    }()

    static func get() throws -> TestPKI { try shared.get() }

    private init() throws {
        guard let openssl = findExecutable("openssl") else { throw TestClientError(description: "openssl not found") }
        Self.removeStaleDirectories()
        directory = NSTemporaryDirectory() + Self.prefix + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            ec() { "$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            ca() {
                ec "$1.key"
                "$OPENSSL" req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \\
                    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            }
            leaf() {  # name issuer extendedKeyUsage commonName [subjectAltName]
                [ -f "$1.key" ] || ec "$1.key"
                "$OPENSSL" req -new -key "$1.key" -out "$1.csr" -subj "/CN=$4"
                printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=%s\\n%s\\n' "$3" "${5:-}" > "$1.ext"
                "$OPENSSL" x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \\
                    -days 30 -extfile "$1.ext" 2>/dev/null
            }
            ca ca "prefect-exporter test CA"
            ca other-ca "another test CA"
            leaf server ca serverAuth localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
            "$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-server.key 2>/dev/null
            leaf rsa-server ca serverAuth localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
            leaf client ca clientAuth good-client
            leaf wrong-purpose ca serverAuth wrong-purpose-client
            leaf other-client other-ca clientAuth intruder
            ec self-signed.key
            "$OPENSSL" req -x509 -new -key self-signed.key -out self-signed.pem -days 30 -subj /CN=localhost \\
                -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
            "$OPENSSL" pkey -in server.key -aes256 -passout pass:secret -out encrypted.key
            """
        let result = try runProgram("/bin/sh", ["-c", "OPENSSL='\(openssl)'\n" + script], directory: directory)
        guard result.status == 0 else {
            throw TestClientError(description: "openssl failed (\(result.status)): \(result.stderr)")
        }
    }

    private static let prefix = "prefect-exporter-pki-"

    /// Removes the PKI directories of earlier test runs (older than an hour, so that a run in
    /// progress elsewhere keeps its own).
    private static func removeStaleDirectories() {
        let temporary = NSTemporaryDirectory()
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: temporary) else { return }
        for name in names where name.hasPrefix(prefix) {
            let path = temporary + name
            guard let modified = (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                modified.timeIntervalSinceNow < -3600
            else { continue }
            try? manager.removeItem(atPath: path)
        }
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Writes a file in a fresh subdirectory of the PKI directory (so relative paths work with `../`) and returns its path.
    func write(_ name: String, _ contents: String) throws -> String {
        let subdirectory = directory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: true)
        let file = subdirectory + "/" + name
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// One `curl` request: its exit status (0, or 35/56/58/60... for TLS failures), HTTP status and headers.
struct CurlResult {
    let exitStatus: Int32
    let httpStatus: Int?
    let headers: [(String, String)]
    let body: String
    let stderr: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// Runs the real curl binary (OpenSSL) against a local server.
func curl(_ url: String, _ arguments: [String] = []) throws -> CurlResult {
    guard let curl = findExecutable("curl") else { throw TestClientError(description: "curl not found") }
    let result = try runProgram(curl, ["-sS", "-i", "--max-time", "15", "--noproxy", "*"] + arguments + [url])
    var status: Int?
    var headers: [(String, String)] = []
    var body = ""
    if result.status == 0 {
        let parts = result.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        body = parts.dropFirst().joined(separator: "\r\n\r\n")
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let fields = statusLine.split(separator: " ")
        if fields.count >= 2 { status = Int(fields[1]) }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }
    return CurlResult(exitStatus: result.status, httpStatus: status, headers: headers, body: body, stderr: result.stderr)
}
