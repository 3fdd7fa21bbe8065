/// Repairs the two kinds of broken text that Foundation's `JSONDecoder` cannot decode:
/// `\uXXXX` escapes of lone UTF-16 surrogates (how JSON carries a string that is not valid
/// Unicode, e.g. `"\udc80"`), and bytes that are not UTF-8. Both become U+FFFD.
///
/// Without this, such a string in a required field (a name) fails the whole page of results, and
/// in an optional field (a run's work pool or state name) it silently decodes as nil, since the
/// decoder only fails when the value is read. Everything else is copied unchanged: a document
/// that was invalid for another reason stays invalid.
enum JSONTextRepair {
    /// The repaired bytes, or nil when there is nothing to repair (the common case, found in one pass).
    static func repair(_ bytes: [UInt8]) -> [UInt8]? {
        // JSONDecoder also reads UTF-16 and UTF-32 (a BOM, or a NUL among the first four bytes,
        // which UTF-8 JSON never has): such text is not UTF-8 to repair, and is left as it came.
        if bytes.prefix(4).contains(0) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) {
            return nil
        }
        var input = bytes
        var changed = false
        let decoded = String(decoding: bytes, as: UTF8.self)
        if !decoded.utf8.elementsEqual(bytes) {
            input = Array(decoded.utf8)
            changed = true
        }
        guard mayHoldSurrogateEscape(input) else { return changed ? input : nil }

        let backslash = UInt8(ascii: "\\"), quote = UInt8(ascii: "\""), letterU = UInt8(ascii: "u")
        let replacement = Array(#"\ufffd"#.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        var inString = false

        /// The value of the four hex digits at `start`, if there are four.
        func hex4(_ start: Int) -> Int? {
            guard start + 4 <= input.count else { return nil }
            var value = 0
            for byte in input[start..<(start + 4)] {
                let digit: Int
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
                default: return nil
                }
                value = value * 16 + digit
            }
            return value
        }

        while index < input.count {
            let byte = input[index]
            guard inString else {
                if byte == quote { inString = true }
                output.append(byte)
                index += 1
                continue
            }
            if byte == quote {
                inString = false
                output.append(byte)
                index += 1
                continue
            }
            guard byte == backslash, index + 1 < input.count else {
                output.append(byte)
                index += 1
                continue
            }
            guard input[index + 1] == letterU, let unit = hex4(index + 2) else {
                // Any other escape (or a malformed one, which stays malformed): copy both bytes.
                output.append(byte)
                output.append(input[index + 1])
                index += 2
                continue
            }
            switch unit {
            case 0xD800...0xDBFF:
                if index + 12 <= input.count, input[index + 6] == backslash, input[index + 7] == letterU,
                   let low = hex4(index + 8), (0xDC00...0xDFFF).contains(low)
                {
                    output.append(contentsOf: input[index..<(index + 12)])
                    index += 12
                } else {
                    output.append(contentsOf: replacement)
                    index += 6
                    changed = true
                }
            case 0xDC00...0xDFFF:
                output.append(contentsOf: replacement)
                index += 6
                changed = true
            default:
                output.append(contentsOf: input[index..<(index + 6)])
                index += 6
            }
        }
        return changed ? output : nil
    }

    /// Whether the text holds `\u` followed by `d8`…`df` in either case: the start of a surrogate escape.
    private static func mayHoldSurrogateEscape(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 6 else { return false }
        for index in 0..<(bytes.count - 5) where bytes[index] == UInt8(ascii: "\\") {
            guard bytes[index + 1] == UInt8(ascii: "u"), bytes[index + 2] | 0x20 == UInt8(ascii: "d") else { continue }
            switch bytes[index + 3] | 0x20 {
            case UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): return true
            default: continue
            }
        }
        return false
    }
}
