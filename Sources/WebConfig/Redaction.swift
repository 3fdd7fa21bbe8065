// Keeping password hashes out of error messages and descriptions.

extension WebConfig {
    /// A key as shown in an error: control characters replaced, at most 64 characters, and
    /// never something that looks like a password hash (a mis-indented hash can become a key).
    static func displayKey(_ key: String) -> String {
        if looksLikeHash(key) { return "<a key that looks like a password hash>" }
        var shown = String(key.unicodeScalars.map { scalar -> Character in
            scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                ? "?" : Character(scalar)
        })
        if shown.count > 64 { shown = String(shown.prefix(64)) + "…" }
        return shown
    }

    /// Whether the text contains `$2a$`, `$2b$`, `$2x$` or `$2y$` followed by two digits and `$`:
    /// the start of a bcrypt hash.
    public static func looksLikeHash(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 7 else { return false }
        for start in 0...(bytes.count - 7)
        where bytes[start] == UInt8(ascii: "$") && bytes[start + 1] == UInt8(ascii: "2") && bytes[start + 3] == UInt8(ascii: "$")
            && bytes[start + 6] == UInt8(ascii: "$")
            && bytes[(start + 4)...(start + 5)].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        {
            return true
        }
        return false
    }
}
