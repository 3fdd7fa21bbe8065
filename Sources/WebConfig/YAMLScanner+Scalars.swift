// Where each kind of token ends in the text: anchors, tags and the three kinds of scalars, as
// libyaml's scanner reads them (values are skipped, not built).

extension YAMLScanner {
    /// `&name` or `*name`; the name is letters, digits, `_` and `-`, as in libyaml.
    mutating func scanAnchor(alias: Bool) {
        let start = mark
        skip()
        var name = ""
        while let c = char(), ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-" {
            name.unicodeScalars.append(c)
            skip()
        }
        guard !name.isEmpty, isBlankOrEnd() || "?:,]}%@`".unicodeScalars.contains(char() ?? " ") else { return fail() }
        enqueue(alias ? .alias(name) : .anchor(name), at: start)
    }

    /// `!handle!suffix`, `!suffix` or `!<verbatim>`: up to a blank, or a ',' in a flow collection.
    mutating func scanTag() {
        let start = mark
        skip()
        if check("<") {
            while let c = char(), c != ">", !isBlankOrEnd() { skip() }
            guard check(">") else { return fail() }
            skip()
        } else {
            while let c = char(), c.isASCII, !isBlankOrEnd(), !",[]{}".unicodeScalars.contains(c) { skip() }
        }
        guard isBlankOrEnd() || (flowLevel > 0 && check(",")) else { return fail() }
        enqueue(.tag, at: start)
    }

    /// `|` or `>`: the header line, then every line indented at least as much as the first one.
    mutating func scanBlockScalar() {
        let start = mark
        skip()
        var increment = 0
        func digit() -> Int? { char().flatMap { ("0"..."9").contains($0) ? Int($0.value) - 48 : nil } }
        if check("+") || check("-") {
            skip()
            if let value = digit() {
                guard value > 0 else { return fail() }
                increment = value
                skip()
            }
        } else if let value = digit() {
            guard value > 0 else { return fail() }
            increment = value
            skip()
            if check("+") || check("-") { skip() }
        }
        while isBlank() { skip() }
        if check("#") {
            while !isBreakOrEnd() { skip() }
        }
        guard isBreakOrEnd() else { return fail() }
        skipLine()
        var contentIndent = increment > 0 ? (indent >= 0 ? indent + increment : increment) : 0
        guard skipBlockScalarBreaks(&contentIndent) else { return fail() }
        while mark.column == contentIndent, char() != nil {
            while !isBreakOrEnd() { skip() }
            skipLine()
            guard skipBlockScalarBreaks(&contentIndent) else { return fail() }
        }
        enqueue(.scalar, at: start)
    }

    /// Indentation and empty lines of a block scalar; sets the indentation from the first
    /// non-empty line when the header gave none. False where libyaml fails (a tab as indentation).
    private mutating func skipBlockScalarBreaks(_ contentIndent: inout Int) -> Bool {
        var maxIndent = 0
        while true {
            while contentIndent == 0 || mark.column < contentIndent, check(" ") { skip() }
            maxIndent = max(maxIndent, mark.column)
            if contentIndent == 0 || mark.column < contentIndent, check("\t") { return false }
            guard isBreak() else { break }
            skipLine()
        }
        if contentIndent == 0 {
            contentIndent = max(maxIndent, indent + 1, 1)
        }
        return true
    }

    /// `'...'` (with `''` for a quote) or `"..."` (with backslash escapes); may span lines.
    mutating func scanQuotedScalar(single: Bool) {
        let start = mark
        let quote: Unicode.Scalar = single ? "'" : "\""
        skip()
        while true {
            guard !isDocumentIndicator(), char() != nil else { return fail() }
            while !isBlankOrEnd() {
                if single, check("'"), check("'", 1) {
                    skip()
                    skip()
                } else if check(quote) {
                    break
                } else if !single, check("\\"), isBreak(1) {
                    skip()
                    skipLine()
                    break
                } else if !single, check("\\") {
                    guard char(1) != nil else { return fail() }
                    skip()
                    skip()
                } else {
                    skip()
                }
            }
            if check(quote) { break }
            while isBlank() || isBreak() {
                if isBlank() { skip() } else { skipLine() }
            }
        }
        skip()
        enqueue(.scalar, at: start)
    }

    /// A plain scalar: up to `: `, ` #`, a flow indicator inside a flow collection, or a line
    /// indented no deeper than the current block; it may span lines.
    mutating func scanPlainScalar() {
        let start = mark
        let minimumIndent = indent + 1
        var leadingBlanks = false
        scanning: while true {
            if isDocumentIndicator() || check("#") { break }
            while !isBlankOrEnd() {
                if flowLevel > 0, check(":"), let next = char(1), ",?[]{}".unicodeScalars.contains(next) { return fail() }
                if (check(":") && isBlankOrEnd(1)) || (flowLevel > 0 && ",[]{}".unicodeScalars.contains(char() ?? " ")) {
                    break
                }
                leadingBlanks = false
                skip()
            }
            guard isBlank() || isBreak() else { break }
            while isBlank() || isBreak() {
                if isBlank() {
                    if leadingBlanks, mark.column < minimumIndent, check("\t") { return fail() }
                    skip()
                } else {
                    skipLine()
                    leadingBlanks = true
                }
            }
            if flowLevel == 0, mark.column < minimumIndent { break scanning }
        }
        if leadingBlanks { simpleKeyAllowed = true }
        enqueue(.scalar, at: start)
    }
}
