import Foundation

struct TestClientError: Error, CustomStringConvertible {
    let description: String
}

/// One parsed HTTP/1.1 response.
struct HTTPReply {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A deliberately small HTTP client on raw sockets, so tests see exactly the bytes the server sent
/// (no automatic decompression, no retries, any method, HEAD without a body).
enum TestHTTP {
    /// Opens a connection with 10 s send and receive timeouts.
    static func connect(port: Int, host: String = "127.0.0.1") throws -> Int32 {
        let isIPv6 = host.contains(":")
        let descriptor = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestClientError(description: "socket: errno \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result: Int32
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw TestClientError(description: "connect to \(host):\(port): errno \(code)")
        }
        return descriptor
    }

    static func send(_ bytes: [UInt8], on descriptor: Int32) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw TestClientError(description: "send: errno \(errno)") }
            sent += count
        }
    }

    /// Reads until the server closes the connection.
    static func readToEnd(_ descriptor: Int32) throws -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return data }
            guard count > 0 else { throw TestClientError(description: "recv: errno \(errno) after \(data.count) bytes") }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    static func requestBytes(method: String, path: String, headers: [String] = [], body: [UInt8] = [], close: Bool = true) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for header in headers { head += header + "\r\n" }
        if !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// Sends one request with `Connection: close` and parses the reply.
    static func request(
        port: Int, method: String = "GET", path: String, headers: [String] = [], body: [UInt8] = [], host: String = "127.0.0.1"
    ) throws -> HTTPReply {
        let descriptor = try connect(port: port, host: host)
        defer { close(descriptor) }
        try send(requestBytes(method: method, path: path, headers: headers, body: body), on: descriptor)
        let replies = try parse(readToEnd(descriptor), headRequests: method == "HEAD" ? [0] : [])
        guard replies.count == 1 else { throw TestClientError(description: "expected one reply, got \(replies.count)") }
        return replies[0]
    }

    /// Parses consecutive responses; bodies are delimited by Content-Length (none for HEAD replies).
    static func parse(_ data: [UInt8], headRequests: Set<Int> = []) throws -> [HTTPReply] {
        var replies: [HTTPReply] = []
        var offset = 0
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while offset < data.count {
            guard let end = find(separator, in: data, from: offset) else {
                throw TestClientError(description: "incomplete response head: \(String(decoding: data[offset...], as: UTF8.self))")
            }
            let head = String(decoding: data[offset..<end], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                throw TestClientError(description: "bad status line in \(head)")
            }
            let headers = lines.compactMap { line -> (name: String, value: String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            offset = end + separator.count
            var length = 0
            if !headRequests.contains(replies.count),
                let value = headers.first(where: { $0.name.lowercased() == "content-length" })?.value
            {
                length = Int(value) ?? 0
            }
            guard offset + length <= data.count else {
                throw TestClientError(description: "body shorter than Content-Length \(length)")
            }
            replies.append(HTTPReply(status: status, headers: headers, body: Array(data[offset..<offset + length])))
            offset += length
        }
        return replies
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && Array(haystack[index..<index + needle.count]) == needle { return index }
            index += 1
        }
        return nil
    }
}

/// Runs /bin/gzip with the given arguments on `input` and returns its standard output.
func runGzip(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
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
    guard process.terminationStatus == 0 else {
        throw TestClientError(description: "gzip \(arguments) exited with \(process.terminationStatus)")
    }
    return Array(output)
}

/// A thread-safe flag for readiness closures.
final class TestFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
}
