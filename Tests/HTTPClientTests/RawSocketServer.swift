import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct RawServerError: Error, CustomStringConvertible {
    let description: String
}

/// One request as the raw server read it off the socket.
struct ReceivedRequest: Sendable {
    /// `GET /path HTTP/1.1`.
    let requestLine: String
    /// Header lines in the order received, names as sent.
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var method: String { String(requestLine.split(separator: " ").first ?? "") }
    var target: String { requestLine.split(separator: " ").dropFirst().first.map(String.init) ?? "" }
}

/// What the server does with a request.
enum RawReply: Sendable {
    /// Writes these bytes, then closes the connection.
    case bytes([UInt8])
    /// Never answers; the connection stays open until the server stops.
    case hang
}

/// A tiny HTTP/1.1 server on raw sockets bound to 127.0.0.1 on an ephemeral port.
/// Each connection carries one request (every canned response says `Connection: close`).
final class RawSocketServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let handler: @Sendable (ReceivedRequest) -> RawReply
    private let state = NSLock()
    private var openConnections: Set<Int32> = []
    private var received: [ReceivedRequest] = []
    private var stopped = false
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    /// - Parameter listen: false binds the port without listening (connections are refused),
    ///   and no accept loop runs.
    init(listen shouldListen: Bool = true, accept: Bool = true, handler: @escaping @Sendable (ReceivedRequest) -> RawReply = { _ in .hang }) throws {
        self.handler = handler
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawServerError(description: "socket: errno \(errno)") }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw RawServerError(description: "bind: errno \(errno)")
        }
        if shouldListen {
            guard Glibc.listen(descriptor, 16) == 0 else {
                close(descriptor)
                throw RawServerError(description: "listen: errno \(errno)")
            }
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.listener = descriptor
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        if shouldListen && accept {
            Thread.detachNewThread { [self] in acceptLoop() }
        } else {
            acceptLoopDone.signal()
        }
    }

    deinit {
        stop()
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The requests received so far.
    var requests: [ReceivedRequest] {
        state.lock()
        defer { state.unlock() }
        return received
    }

    func stop() {
        state.lock()
        let wasStopped = stopped
        stopped = true
        let connections = openConnections
        openConnections.removeAll()
        state.unlock()
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        for connection in connections {
            shutdown(connection, Int32(SHUT_RDWR))
        }
        acceptLoopDone.wait()
        close(listener)
    }

    private func acceptLoop() {
        defer { acceptLoopDone.signal() }
        while true {
            let connection = Glibc.accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            state.lock()
            if stopped {
                state.unlock()
                close(connection)
                return
            }
            openConnections.insert(connection)
            state.unlock()
            Thread.detachNewThread { [self] in serve(connection) }
        }
    }

    private func serve(_ connection: Int32) {
        defer {
            state.lock()
            openConnections.remove(connection)
            state.unlock()
            close(connection)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = Self.readRequest(connection) else { return }
        state.lock()
        received.append(request)
        state.unlock()
        switch handler(request) {
        case .bytes(let bytes):
            Self.write(bytes, to: connection)
            shutdown(connection, Int32(SHUT_WR))
            // Drain until the client closes, so that it never sees a reset.
            var scratch = [UInt8](repeating: 0, count: 4096)
            while scratch.withUnsafeMutableBytes({ recv(connection, $0.baseAddress, $0.count, 0) }) > 0 {}
        case .hang:
            var scratch = [UInt8](repeating: 0, count: 4096)
            while scratch.withUnsafeMutableBytes({ recv(connection, $0.baseAddress, $0.count, 0) }) > 0 {}
        }
    }

    private static func readRequest(_ connection: Int32) -> ReceivedRequest? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            data.append(contentsOf: buffer[0..<count])
            if data.count >= 4 {
                headEnd = (0...(data.count - 4)).first { Array(data[$0..<($0 + 4)]) == separator }
            }
        }
        guard let headEnd else { return nil }
        let head = String(decoding: data[0..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst()
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let contentLength = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
        var body = Array(data[(headEnd + 4)...])
        while body.count < contentLength {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            body.append(contentsOf: buffer[0..<count])
        }
        return ReceivedRequest(requestLine: requestLine, headers: headers, body: body)
    }

    private static func write(_ bytes: [UInt8], to connection: Int32) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            sent += count
        }
    }

    /// A complete response with `Content-Length` and `Connection: close`.
    static func response(
        status: Int = 200, reason: String = "OK", headers: [String] = [], body: [UInt8] = []
    ) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\n"
        for header in headers { head += header + "\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}

/// Runs /bin/gzip (or gzip on PATH) over bytes.
func runGzip(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/bin/gzip") ? "/bin/gzip" : "/usr/bin/gzip")
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    let writer = Thread {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw RawServerError(description: "gzip exited \(process.terminationStatus)") }
    return Array(output)
}
