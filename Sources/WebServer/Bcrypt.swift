import CCrypt
import Glibc
import WebConfig

/// bcrypt verification with the system's libcrypt (libxcrypt).
///
/// Semantics are those of Go's `golang.org/x/crypto/bcrypt` (which exporter-toolkit uses):
/// `$2a$`, `$2b$` and `$2y$` hashes are the same algorithm, and only the 31 characters of the
/// hash proper are compared (in constant time). libxcrypt's `$2a$` differs from that for some
/// passwords with bytes above 0x7F (crypt_blowfish's "safety" measure), so every hash is
/// checked as `$2b$`; libxcrypt also canonicalizes the last salt character in its output,
/// which is why the salt is not compared.
public enum Bcrypt {
    /// Whether `password` matches `hash`. False for a malformed hash, a password containing a
    /// NUL byte (libcrypt would stop reading there), or any libcrypt failure.
    ///
    /// Slow on purpose: cost 10 takes about 50 to 100 ms.
    public static func verify(password: some Collection<UInt8>, hash: String) -> Bool {
        guard BcryptHash.problem(with: hash) == nil else { return false }
        guard !password.contains(0) else { return false }
        var setting = Array("$2b$".utf8) + Array(hash.utf8).dropFirst(4)
        setting.append(0)
        var phrase = Array(password)
        phrase.append(0)
        defer { wipe(&phrase) }

        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        let size = MemoryLayout<crypt_data>.size
        memset(data, 0, size)  // crypt_rn wants zeroed memory on first use
        defer {
            explicit_bzero(data, size)  // it holds state derived from the password
            data.deallocate()
        }
        let computed: [UInt8]? = phrase.withUnsafeBufferPointer { phrasePointer in
            setting.withUnsafeBufferPointer { settingPointer in
                phrasePointer.withMemoryRebound(to: CChar.self) { phraseChars in
                    settingPointer.withMemoryRebound(to: CChar.self) { settingChars in
                        guard let output = crypt_rn(phraseChars.baseAddress, settingChars.baseAddress, data, Int32(size)) else {
                            return nil
                        }
                        return Array(UnsafeBufferPointer(start: output, count: strnlen(output, 128))).map { UInt8(bitPattern: $0) }
                    }
                }
            }
        }
        guard let computed, computed.count == BcryptHash.length else { return false }
        let expected = Array(hash.utf8)
        // Same cost, then the hash part (after "$2b$NN$" and the 22 characters of salt).
        guard computed[4..<7].elementsEqual(expected[4..<7]) else { return false }
        return constantTimeEquals(computed[29...], expected[29...])
    }
}
