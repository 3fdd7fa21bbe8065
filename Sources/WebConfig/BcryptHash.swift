/// The format of bcrypt hashes: `$2y$`, `$2b$` or `$2a$`, a two-digit cost from 04 to 31, and
/// 53 characters of bcrypt's base64 (22 of salt, 31 of hash): 60 characters in all.
public enum BcryptHash {
    /// The length of a bcrypt hash.
    public static let length = 60
    static let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// Why `hash` is not a usable bcrypt hash, or nil when it is. Never quotes the hash.
    public static func problem(with hash: String) -> String? {
        let bytes = Array(hash.utf8)
        let expected = "not a bcrypt hash: expected $2y$, $2b$ or $2a$, a two-digit cost, '$' and 53 characters "
            + "(60 in all, as `htpasswd -nbBC 10 user password` prints after the colon)"
        guard bytes.count == length, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
            bytes[6] == UInt8(ascii: "$")
        else { return expected }
        guard let cost = cost(of: bytes) else { return expected }
        guard (4...31).contains(cost) else { return "bcrypt cost \(cost) is outside the allowed range 4 to 31" }
        guard bytes[7...].allSatisfy({ alphabet.contains($0) }) else { return expected }
        return nil
    }

    /// The two-digit cost at bytes 4 and 5 (`$2y$10$…` has cost 10); nil when they are not digits.
    package static func cost(of bytes: [UInt8]) -> Int? {
        guard bytes.count >= 7 else { return nil }
        let digits = bytes[4...5]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }
}
