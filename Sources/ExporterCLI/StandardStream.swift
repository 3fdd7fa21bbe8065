#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output or standard error, written unbuffered with `write(2)`.
struct StandardStream: Sendable {
    /// File descriptor 1.
    static let output = StandardStream(descriptor: 1)
    /// File descriptor 2.
    static let error = StandardStream(descriptor: 2)

    let descriptor: Int32

    /// Writes all of `bytes`, going on after partial writes and interruptions; gives up on any
    /// other error (a closed pipe, a full disk), since there is nowhere left to report it.
    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            guard var next = buffer.baseAddress else { return }
            var remaining = buffer.count
            while remaining > 0 {
                #if canImport(Glibc)
                let written = Glibc.write(descriptor, next, remaining)
                #else
                let written = Darwin.write(descriptor, next, remaining)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                next += written
                remaining -= written
            }
        }
    }
}
