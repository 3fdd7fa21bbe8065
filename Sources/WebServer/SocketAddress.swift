import Glibc

/// An IPv4 or IPv6 socket address with a port.
enum SocketAddress {
    case ipv4(in_addr, port: UInt16)
    case ipv6(in6_addr, port: UInt16)

    var isIPv6: Bool {
        if case .ipv6 = self { return true }
        return false
    }

    var isUnspecified: Bool {
        switch self {
        case .ipv4(let address, _): return address.s_addr == 0
        case .ipv6(let address, _):
            var copy = address
            return withUnsafeBytes(of: &copy) { bytes in bytes.allSatisfy { $0 == 0 } }
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length, for bind().
    func withSockAddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        switch self {
        case .ipv4(let address, let port):
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            socketAddress.sin_addr = address
            return Self.withGeneric(&socketAddress, body)
        case .ipv6(let address, let port):
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port.bigEndian
            socketAddress.sin6_addr = address
            return Self.withGeneric(&socketAddress, body)
        }
    }

    /// A `sockaddr_in` or `sockaddr_in6` seen as the generic `sockaddr` the socket calls take.
    private static func withGeneric<Specific, Result>(
        _ specific: inout Specific, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) -> Result {
        withUnsafePointer(to: &specific) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<Specific>.size)) }
        }
    }
}

extension in_addr {
    static var unspecified: in_addr { in_addr(s_addr: 0) }
}

extension in6_addr {
    static var unspecified: in6_addr { in6_addr() }
}
