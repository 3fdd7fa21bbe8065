import Glibc

/// A system error code as a short lowercase message, e.g. `address already in use`.
func errnoMessage(_ code: Int32) -> String {
    switch code {
    case EADDRINUSE: return "address already in use"
    case EACCES: return "permission denied"
    case EADDRNOTAVAIL: return "cannot assign requested address"
    case EAFNOSUPPORT: return "address family not supported"
    case EMFILE, ENFILE: return "too many open files"
    default:
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text).lowercasedFirst
    }
}

extension String {
    /// The string with its first character lowercased: "Address already in use" -> "address already in use".
    var lowercasedFirst: String {
        guard let first else { return self }
        return first.lowercased() + dropFirst()
    }
}
