import Glibc

// Handling secrets in memory: wiping them, comparing them in constant time, and holding them.

/// Overwrites the bytes with zeros in a way the compiler cannot drop.
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { explicit_bzero(base, buffer.count) }
    }
}

/// Compares two byte sequences in time that depends only on their lengths.
func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
    return difference == 0
}

/// Bytes that are wiped when released (the private key).
final class SecretBytes: @unchecked Sendable, Equatable {
    // Safety: `storage` is written only in init and deinit.
    private let storage: UnsafeMutableBufferPointer<UInt8>
    /// The number of bytes of the secret (the allocation has at least one, even for none).
    let count: Int

    init(_ bytes: [UInt8]) {
        count = bytes.count
        storage = .allocate(capacity: max(bytes.count, 1))
        storage.initialize(repeating: 0)
        _ = storage.update(fromContentsOf: bytes)
    }

    deinit {
        if let base = storage.baseAddress { explicit_bzero(base, storage.count) }
        storage.deallocate()
    }

    /// Calls `body` with the secret's `count` bytes, which must not escape the call.
    func withUnsafeBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        body(UnsafeBufferPointer(rebasing: storage[0..<count]))
    }

    static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        lhs === rhs || lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEquals(left, right) } }
    }
}
