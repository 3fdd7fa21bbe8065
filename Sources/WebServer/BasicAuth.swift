import CCrypt
import CMicroHTTPDShim
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

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

    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { explicit_bzero(base, buffer.count) }
        }
    }
}

/// Compares two byte sequences in time that depends only on their lengths.
func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
    return difference == 0
}

/// Checks `Authorization: Basic` credentials against `basic_auth_users`, like exporter-toolkit:
///
/// - a user that is not configured is checked against a dummy hash of the same cost, so the
///   time taken does not tell which user names exist;
/// - one bcrypt computation runs at a time (bcrypt is CPU-heavy on purpose, and unauthenticated
///   clients can trigger it), while requests whose credentials are cached never wait;
/// - successful checks are cached for ``cacheLifetime``, keyed by an HMAC-SHA-256 of the user
///   and password under a random per-process key, so no password is kept in memory. Failures
///   are not cached.
public final class BasicAuthenticator: @unchecked Sendable {
    // Safety: `users`, `dummySetting`, `hmacKey` and `cacheLifetime` are immutable; `cache` is
    // only used under `cacheLock`; `bcryptLock` only serializes calls to Bcrypt.verify.

    /// The value of `WWW-Authenticate` sent with 401.
    public static let challenge = "Basic realm=\"prefect-exporter\""

    private let users: [String: String]
    /// Checked for users that are not configured: the highest configured cost, a salt, no hash that can match.
    let dummyHash: String
    private let hmacKey: [UInt8]
    private let cacheLifetime: Duration
    private let cacheLock = MutexLock()
    private var cache: [String: (digest: [UInt8], expires: ContinuousClock.Instant)] = [:]
    private let bcryptLock = MutexLock()
    private var computations = 0
    private let clock = ContinuousClock()

    /// How many bcrypt computations have run (for tests and debugging).
    var bcryptComputations: Int {
        bcryptLock.lock()
        defer { bcryptLock.unlock() }
        return computations
    }

    /// Creates an authenticator for `users` (user name to bcrypt hash, already validated).
    public init(users: [String: String], cacheLifetime: Duration = .seconds(60)) {
        self.users = users
        self.cacheLifetime = cacheLifetime
        // The dummy hash has the highest configured cost, so unknown users take as long as known ones.
        let cost = users.values.compactMap { BcryptHash.cost(of: Array($0.utf8)) }.max() ?? 10
        let costText = cost < 10 ? "0\(cost)" : "\(cost)"
        self.dummyHash = "$2b$\(costText)$" + String(repeating: "A", count: 53)
        var key = [UInt8](repeating: 0, count: 32)
        if pe_random_key(&key, key.count) != 0 {
            // Practically impossible; fall back to the system's generator rather than a fixed key.
            var generator = SystemRandomNumberGenerator()
            key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
        self.hmacKey = key
    }

    /// Whether the `Authorization` header value carries valid credentials.
    public func authenticate(authorization: String?) -> Bool {
        guard let authorization, let (user, password) = Self.parseBasic(authorization) else { return false }
        var secret = password
        defer { Bcrypt.wipe(&secret) }
        let digest = hmac(user: user, password: secret)
        let now = clock.now
        if cachedDigest(for: user, now: now).map({ constantTimeEquals($0, digest) }) == true {
            return true
        }
        let known = users[user]
        bcryptLock.lock()
        let matches = Bcrypt.verify(password: secret, hash: known ?? dummyHash)
        computations += 1
        bcryptLock.unlock()
        guard matches, known != nil else { return false }
        cacheLock.lock()
        cache[user] = (digest, now.advanced(by: cacheLifetime))
        cacheLock.unlock()
        return true
    }

    private func cachedDigest(for user: String, now: ContinuousClock.Instant) -> [UInt8]? {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        guard let entry = cache[user] else { return nil }
        guard entry.expires > now else {
            cache[user] = nil
            return nil
        }
        return entry.digest
    }

    private func hmac(user: String, password: [UInt8]) -> [UInt8] {
        var message = Array(user.utf8)
        message.append(0)
        message.append(contentsOf: password)
        defer { Bcrypt.wipe(&message) }
        var digest = [UInt8](repeating: 0, count: 32)
        let status = hmacKey.withUnsafeBytes { key in
            message.withUnsafeBytes { data in
                digest.withUnsafeMutableBytes { output in
                    pe_hmac_sha256(key.baseAddress, key.count, data.baseAddress, data.count, output.baseAddress)
                }
            }
        }
        // On failure, a digest no cache entry can equal (entries are only written with good digests).
        return status == 0 ? digest : []
    }

    /// Splits `Basic <base64(user:password)>` like Go's `Request.BasicAuth`: the scheme is
    /// case-insensitive, the base64 must be standard and padded, the user ends at the first colon.
    static func parseBasic(_ value: String) -> (user: String, password: [UInt8])? {
        let prefix = "basic "
        let bytes = Array(value.utf8)
        guard bytes.count > prefix.utf8.count,
            String(decoding: bytes[..<prefix.utf8.count], as: UTF8.self).lowercased() == prefix,
            let decoded = Data(base64Encoded: Data(bytes[prefix.utf8.count...]))
        else { return nil }
        var plain = [UInt8](decoded)
        defer { Bcrypt.wipe(&plain) }
        guard let colon = plain.firstIndex(of: UInt8(ascii: ":")),
            let user = String(validating: plain[..<colon], as: UTF8.self)
        else { return nil }
        return (user, Array(plain[(colon + 1)...]))
    }
}
