import Glibc

/// A listening TCP socket that this process created, bound and owns until handed to libmicrohttpd.
struct ListeningSocket {
    let descriptor: Int32
    let isIPv6: Bool
    let port: UInt16

    /// A second descriptor for the same socket, to hand to libmicrohttpd.
    ///
    /// libmicrohttpd closes a listen socket it was given when it fails late in starting, but not
    /// when it fails early; with a duplicate the caller can tell (see ``isStillOpen(_:)``) and
    /// never closes a descriptor number twice.
    func duplicate(address: ListenAddress) throws(WebServerError) -> Int32 {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else {
            throw WebServerError(kind: .listenFailed, description: "cannot listen on \(address): dup: \(errnoMessage(errno))")
        }
        return copy
    }

    /// Whether `copy` is still open and still refers to this socket (rather than to a descriptor
    /// that reused its number). Race-free while this socket's own descriptor is open.
    func isStillOpen(_ copy: Int32) -> Bool {
        var original = stat()
        var other = stat()
        guard fstat(descriptor, &original) == 0, fstat(copy, &other) == 0 else { return false }
        return original.st_dev == other.st_dev && original.st_ino == other.st_ino
    }

    /// Closes this socket's descriptor.
    func close() {
        _ = Glibc.close(descriptor)
    }

    /// Creates, binds and listens. Every failure is reported as "cannot listen on <address>: <reason>".
    static func open(_ address: ListenAddress, backlog: Int32) throws(WebServerError) -> ListeningSocket {
        let candidates = try socketAddresses(for: address)
        var lastError: WebServerError?
        for candidate in candidates {
            do {
                return try open(candidate, address: address, backlog: backlog)
            } catch {
                lastError = error
                // Only fall back to IPv4 when IPv6 itself is unavailable.
                if error.kind != .listenFailed { break }
            }
        }
        throw lastError ?? WebServerError(kind: .invalidAddress, description: "cannot listen on \(address): no usable address")
    }

    private static func open(_ socketAddress: SocketAddress, address: ListenAddress, backlog: Int32) throws(WebServerError) -> ListeningSocket {
        func failure(_ step: String, _ code: Int32) -> WebServerError {
            let kind: WebServerError.Kind = code == EADDRINUSE ? .addressInUse : .listenFailed
            let reason = step.isEmpty ? errnoMessage(code) : "\(step): \(errnoMessage(code))"
            return WebServerError(kind: kind, description: "cannot listen on \(address): \(reason)")
        }
        let family = socketAddress.isIPv6 ? AF_INET6 : AF_INET
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let descriptor = socket(family, type, 0)
        guard descriptor >= 0 else { throw failure("socket", errno) }
        var succeeded = false
        defer { if !succeeded { _ = Glibc.close(descriptor) } }

        var on: Int32 = 1
        guard setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw failure("setsockopt SO_REUSEADDR", errno)
        }
        if socketAddress.isIPv6 {
            // Dual stack for the unspecified address `::` (like Go's net.Listen); IPv6 only otherwise.
            var v6only: Int32 = socketAddress.isUnspecified ? 0 : 1
            guard setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw failure("setsockopt IPV6_V6ONLY", errno)
            }
        }
        let bound = socketAddress.withSockAddr { pointer, length in bind(descriptor, pointer, length) }
        guard bound == 0 else { throw failure("", errno) }
        guard listen(descriptor, backlog) == 0 else { throw failure("", errno) }

        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw failure("getsockname", errno) }
        let port: UInt16 = withUnsafePointer(to: &storage) { pointer in
            if socketAddress.isIPv6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        succeeded = true
        return ListeningSocket(descriptor: descriptor, isIPv6: socketAddress.isIPv6, port: port)
    }

    /// The socket addresses to try, in order.
    private static func socketAddresses(for address: ListenAddress) throws(WebServerError) -> [SocketAddress] {
        if address.host.isEmpty {
            return [.ipv6(.unspecified, port: address.port), .ipv4(.unspecified, port: address.port)]
        }
        var ipv4 = in_addr()
        if inet_pton(AF_INET, address.host, &ipv4) == 1 { return [.ipv4(ipv4, port: address.port)] }
        var ipv6 = in6_addr()
        if inet_pton(AF_INET6, address.host, &ipv6) == 1 { return [.ipv6(ipv6, port: address.port)] }
        return try resolve(address)
    }

    /// Resolves a host name; IPv4 results first, like Go's net.Listen.
    private static func resolve(_ address: ListenAddress) throws(WebServerError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, nil, &hints, &list)
        guard status == 0 else {
            let reason = String(cString: gai_strerror(status))
            throw WebServerError(
                kind: .invalidAddress,
                description: "cannot listen on \(address): cannot resolve host \"\(address.host)\": \(reason.lowercasedFirst)")
        }
        defer { freeaddrinfo(list) }
        var ipv4: [SocketAddress] = []
        var ipv6: [SocketAddress] = []
        var entry = list
        while let current = entry?.pointee {
            if current.ai_family == AF_INET, let raw = current.ai_addr {
                let value = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                ipv4.append(.ipv4(value, port: address.port))
            } else if current.ai_family == AF_INET6, let raw = current.ai_addr {
                let value = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                ipv6.append(.ipv6(value, port: address.port))
            }
            entry = current.ai_next
        }
        guard let first = (ipv4 + ipv6).first else {
            throw WebServerError(
                kind: .invalidAddress,
                description: "cannot listen on \(address): host \"\(address.host)\" has no IPv4 or IPv6 address")
        }
        return [first]
    }
}
