import Glibc

/// A NUL-terminated copy of some bytes for libmicrohttpd, wiped when released.
final class CStringCopy: @unchecked Sendable {
    // Safety: the memory is written only in init and deinit; libmicrohttpd only reads it.
    let pointer: UnsafeMutableRawPointer
    private let count: Int

    init(_ bytes: some Collection<UInt8>) {
        count = bytes.count + 1
        let memory = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        let buffer = UnsafeMutableBufferPointer(start: memory, count: count)
        _ = buffer.initialize(from: bytes)
        memory[count - 1] = 0
        pointer = UnsafeMutableRawPointer(memory)
    }

    deinit {
        explicit_bzero(pointer, count)
        pointer.deallocate()
    }
}

/// The TLS settings as the C strings libmicrohttpd's options take.
final class TLSStrings: Sendable {
    let certificate: CStringCopy
    let key: CStringCopy
    let priorities: CStringCopy
    let trust: CStringCopy?

    init(_ material: TLSMaterial) {
        certificate = CStringCopy(material.certificate)
        key = material.key.withUnsafeBytes { CStringCopy($0) }
        priorities = CStringCopy(Array(material.priorities.utf8))
        trust = material.trust.map { CStringCopy($0) }
    }
}
