import CGnuTLSShim
import FoundationEssentials
import WebConfig
import Locking

/// Checks `Authorization: Basic` credentials against `basic_auth_users`, like exporter-toolkit:
///
/// - a user that is not configured is checked against a dummy hash of the same cost, so the
///   time taken does not tell which user names exist;
/// - one bcrypt computation runs at a time (bcrypt is CPU-heavy on purpose, and unauthenticated
///   clients can trigger it), while requests whose credentials are cached never wait;
/// - successful checks are cached for ``cacheLifetime``, keyed by an HMAC-SHA-256 of the user
///   and password under a random per-process key, so no password is kept in memory. Failures
///   are not cached.
public final class BasicAuthenticator: Sendable {

    /// The value of `WWW-Authenticate` sent with 401.
    public static let challenge = "Basic realm=\"prefect-exporter\""

    private let users: [String: String]
    /// Checked for users that are not configured: the highest configured cost, a salt, no hash that can match.
    let dummyHash: String
    private let hmacKey: [UInt8]
    private let cacheLifetime: Duration
    private let cache = LockedValue<[String: (digest: [UInt8], expires: ContinuousClock.Instant)]>([:])
    /// Held while bcrypt runs, so that one computation runs at a time; counts the computations.
    private let bcrypt = LockedValue(0)
    private let clock = ContinuousClock()

    /// How many bcrypt computations have run (for tests and debugging).
    var bcryptComputations: Int {
        bcrypt.withLock { $0 }
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
        defer { wipe(&secret) }
        let digest = hmac(user: user, password: secret)
        let now = clock.now
        if cachedDigest(for: user, now: now).map({ constantTimeEquals($0, digest) }) == true {
            return true
        }
        let known = users[user]
        let matches = bcrypt.withLock { computations in
            computations += 1
            return Bcrypt.verify(password: secret, hash: known ?? dummyHash)
        }
        guard matches, known != nil else { return false }
        let entry = (digest, now.advanced(by: cacheLifetime))
        cache.withLock { $0[user] = entry }
        return true
    }

    private func cachedDigest(for user: String, now: ContinuousClock.Instant) -> [UInt8]? {
        cache.withLock { cache in
            guard let entry = cache[user] else { return nil }
            guard entry.expires > now else {
                cache[user] = nil
                return nil
            }
            return entry.digest
        }
    }

    private func hmac(user: String, password: [UInt8]) -> [UInt8] {
        var message = Array(user.utf8)
        message.append(0)
        message.append(contentsOf: password)
        defer { wipe(&message) }
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
        defer { wipe(&plain) }
        guard let colon = plain.firstIndex(of: UInt8(ascii: ":")),
            let user = String(validating: plain[..<colon], as: UTF8.self)
        else { return nil }
        return (user, Array(plain[(colon + 1)...]))
    }
}
