/// A parsed listen address such as `:14200`, `127.0.0.1:14200`, `[::1]:14200` or `localhost:0`.
///
/// An empty host means every interface: the server then listens on `[::]` with IPv4 mapped in
/// (dual stack), or on `0.0.0.0` when the machine has no IPv6. Port 0 asks the kernel for a
/// free port; ``WebServer/port`` tells which one it chose.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host part without brackets: an IPv4 or IPv6 literal, a host name, or empty for every interface.
    public let host: String
    /// The port part.
    public let port: UInt16
    /// The address as written.
    public let description: String

    /// Parses `host:port`, `[ipv6]:port` or `:port`.
    public init(parsing text: String) throws(WebServerError) {
        func invalid(_ reason: String) -> WebServerError {
            WebServerError(kind: .invalidAddress, description: "invalid listen address \"\(text)\": \(reason)")
        }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("missing ']' after IPv6 address") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("missing port after ']'") }
            portPart = rest.dropFirst()
            guard !hostPart.isEmpty else { throw invalid("empty IPv6 address between brackets") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw invalid("missing port, expected host:port") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw invalid("IPv6 addresses must be written in brackets, like [::1]:14200") }
        }
        guard !portPart.isEmpty, portPart.utf8.count <= 5, portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber),
            let port = UInt16(portPart)
        else { throw invalid("port must be a number from 0 to 65535") }
        self.host = String(hostPart)
        self.port = port
        self.description = text
    }
}
