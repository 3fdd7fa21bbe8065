extension StringProtocol {
    /// The text without leading and trailing white space and line ends: the Unicode White_Space
    /// characters, the set of Foundation's `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public func trimmingWhitespaceAndNewlines() -> String {
        trimmingScalars { $0.properties.isWhitespace }
    }

    /// The text without leading and trailing spaces and tabs (line ends are kept): the Unicode
    /// space separators and U+0009, the set of Foundation's `trimmingCharacters(in: .whitespaces)`.
    public func trimmingWhitespace() -> String {
        trimmingScalars { $0.properties.isWhitespace && !$0.isLineEnd }
    }

    private func trimmingScalars(where isTrimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = String(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !isTrimmed($0) }),
              let last = scalars.lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}

extension Unicode.Scalar {
    /// U+000A to U+000D, NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR: the white space that
    /// Foundation's `.whitespaces` leaves out of `.whitespacesAndNewlines`.
    fileprivate var isLineEnd: Bool {
        (0x0A...0x0D).contains(value) || value == 0x85 || value == 0x2028 || value == 0x2029
    }
}
