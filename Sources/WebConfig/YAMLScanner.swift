// A YAML tokenizer for the prescan: it splits text into tokens the way libyaml's scanner
// (scanner.c, the copy inside Yams) does, so that the prescan sees the mappings, lists, anchors
// and aliases that Yams will later compose, without building anything and without libyaml.
//
// It follows libyaml step by step where structure is decided: indentation (roll and unroll),
// simple keys (a key is only known to be one when its ':' comes, and then KEY and
// BLOCK-MAPPING-START are inserted before it), flow levels, and where each kind of scalar ends.
// It keeps no scalar values and stops at the first place where libyaml would report an error:
// Yams then refuses the file with that error, and composes nothing beyond it.

/// A token's position: the index, line and column of its first character, all from 0 and
/// counted in Unicode scalars, as libyaml counts them.
struct YAMLMark: Equatable {
    var index = 0
    var line = 0
    var column = 0
}

/// The tokens the prescan needs; scalar values, tags and directives are not kept.
enum YAMLToken: Equatable {
    case streamEnd
    case documentMarker
    case blockSequenceStart, blockMappingStart, blockEnd
    case flowSequenceStart, flowMappingStart, flowSequenceEnd, flowMappingEnd, flowEntry
    case blockEntry, key, value
    case anchor(String), alias(String)
    case tag, scalar
}

struct YAMLScanner {
    private struct SimpleKey {
        var possible = false
        var required = false
        var tokenNumber = 0
        var mark = YAMLMark()
    }

    private let text: [Unicode.Scalar]
    var mark = YAMLMark()
    /// Tokens fetched but not yet handed out, from `head` on.
    private var queue: [(token: YAMLToken, mark: YAMLMark)] = []
    private var head = 0
    private var tokensParsed = 0
    private var done = false
    var flowLevel = 0
    var indent = -1
    private var indents: [Int] = []
    var simpleKeyAllowed = true
    private var simpleKeys = [SimpleKey()]

    init(_ text: String) {
        self.text = Array(text.unicodeScalars)
    }

    /// The next token and where it starts; nil after the end of the stream, or where libyaml
    /// would stop with an error.
    mutating func next() -> (token: YAMLToken, mark: YAMLMark)? {
        guard !done else { return nil }
        fetchMoreTokens()
        guard !done, head < queue.count else { return nil }
        let next = queue[head]
        head += 1
        tokensParsed += 1
        if head > 256, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        if next.token == .streamEnd { done = true }
        return next
    }

    // MARK: Characters

    func char(_ offset: Int = 0) -> Unicode.Scalar? {
        let index = mark.index + offset
        guard index < text.count, text[index] != "\0" else { return nil }
        return text[index]
    }

    func check(_ character: Unicode.Scalar, _ offset: Int = 0) -> Bool { char(offset) == character }
    func isBreak(_ offset: Int = 0) -> Bool {
        guard let c = char(offset) else { return false }
        return c == "\n" || c == "\r" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}"
    }
    func isBlank(_ offset: Int = 0) -> Bool { check(" ", offset) || check("\t", offset) }
    func isBreakOrEnd(_ offset: Int = 0) -> Bool { char(offset) == nil || isBreak(offset) }
    func isBlankOrEnd(_ offset: Int = 0) -> Bool { isBlank(offset) || isBreakOrEnd(offset) }
    func isDocumentIndicator() -> Bool {
        mark.column == 0 && isBlankOrEnd(3)
            && ((check("-") && check("-", 1) && check("-", 2)) || (check(".") && check(".", 1) && check(".", 2)))
    }

    mutating func skip() {
        mark.index += 1
        mark.column += 1
    }

    mutating func skipLine() {
        if check("\r"), check("\n", 1) {
            mark.index += 2
        } else if isBreak() {
            mark.index += 1
        } else {
            return
        }
        mark.column = 0
        mark.line += 1
    }

    mutating func fail() { done = true }

    // MARK: The token queue and simple keys

    private mutating func fetchMoreTokens() {
        while !done {
            var needMore = head == queue.count
            if !needMore {
                staleSimpleKeys()
                needMore = simpleKeys.contains { $0.possible && $0.tokenNumber == tokensParsed }
            }
            guard needMore else { return }
            fetchNextToken()
        }
    }

    mutating func enqueue(_ token: YAMLToken, at tokenMark: YAMLMark, number: Int? = nil) {
        if let number {
            queue.insert((token, tokenMark), at: head + number - tokensParsed)
        } else {
            queue.append((token, tokenMark))
        }
    }

    private mutating func staleSimpleKeys() {
        for index in simpleKeys.indices where simpleKeys[index].possible {
            let key = simpleKeys[index]
            guard key.mark.line < mark.line || key.mark.index + 1024 < mark.index else { continue }
            if key.required { return fail() }
            simpleKeys[index].possible = false
        }
    }

    private mutating func saveSimpleKey() {
        guard simpleKeyAllowed else { return }
        let key = SimpleKey(
            possible: true, required: flowLevel == 0 && indent == mark.column,
            tokenNumber: tokensParsed + queue.count - head, mark: mark)
        removeSimpleKey()
        simpleKeys[simpleKeys.count - 1] = key
    }

    private mutating func removeSimpleKey() {
        let last = simpleKeys.count - 1
        if simpleKeys[last].possible, simpleKeys[last].required { fail() }
        simpleKeys[last].possible = false
    }

    private mutating func rollIndent(_ column: Int, number: Int?, _ token: YAMLToken, at tokenMark: YAMLMark) {
        guard flowLevel == 0, indent < column else { return }
        indents.append(indent)
        indent = column
        enqueue(token, at: tokenMark, number: number)
    }

    private mutating func unrollIndent(_ column: Int) {
        guard flowLevel == 0 else { return }
        while indent > column {
            enqueue(.blockEnd, at: mark)
            indent = indents.popLast() ?? -1
        }
    }

    // MARK: Tokens

    private mutating func fetchNextToken() {
        scanToNextToken()
        staleSimpleKeys()
        unrollIndent(mark.column)
        guard !done else { return }
        guard let c = char() else {
            // Stream end: libyaml moves to a new line, closes every block and drops the simple key.
            if mark.column != 0 {
                mark.column = 0
                mark.line += 1
            }
            unrollIndent(-1)
            removeSimpleKey()
            simpleKeyAllowed = false
            return enqueue(.streamEnd, at: mark)
        }
        if mark.column == 0, c == "%" || isDocumentIndicator() {
            let start = mark
            unrollIndent(-1)
            removeSimpleKey()
            simpleKeyAllowed = false
            if c == "%" {  // a directive: its line, line break included
                while !isBreakOrEnd() { skip() }
                skipLine()
            } else {
                for _ in 0..<3 { skip() }
            }
            return enqueue(.documentMarker, at: start)
        }
        let start = mark
        switch c {
        case "[", "{":
            saveSimpleKey()
            simpleKeys.append(SimpleKey())
            flowLevel += 1
            simpleKeyAllowed = true
            skip()
            enqueue(c == "[" ? .flowSequenceStart : .flowMappingStart, at: start)
        case "]", "}":
            removeSimpleKey()
            if flowLevel > 0 {
                flowLevel -= 1
                simpleKeys.removeLast()
            }
            simpleKeyAllowed = false
            skip()
            enqueue(c == "]" ? .flowSequenceEnd : .flowMappingEnd, at: start)
        case ",":
            removeSimpleKey()
            simpleKeyAllowed = true
            skip()
            enqueue(.flowEntry, at: start)
        case "-" where isBlankOrEnd(1):
            if flowLevel == 0 {
                guard simpleKeyAllowed else { return fail() }
                rollIndent(mark.column, number: nil, .blockSequenceStart, at: start)
            }
            removeSimpleKey()
            simpleKeyAllowed = true
            skip()
            enqueue(.blockEntry, at: start)
        case "?" where flowLevel > 0 || isBlankOrEnd(1):
            if flowLevel == 0 {
                guard simpleKeyAllowed else { return fail() }
                rollIndent(mark.column, number: nil, .blockMappingStart, at: start)
            }
            removeSimpleKey()
            simpleKeyAllowed = flowLevel == 0
            skip()
            enqueue(.key, at: start)
        case ":" where flowLevel > 0 || isBlankOrEnd(1):
            fetchValue()
        case "*", "&":
            saveSimpleKey()
            simpleKeyAllowed = false
            scanAnchor(alias: c == "*")
        case "!":
            saveSimpleKey()
            simpleKeyAllowed = false
            scanTag()
        case "|" where flowLevel == 0, ">" where flowLevel == 0:
            removeSimpleKey()
            simpleKeyAllowed = true
            scanBlockScalar()
        case "'", "\"":
            saveSimpleKey()
            simpleKeyAllowed = false
            scanQuotedScalar(single: c == "'")
        default:
            let startsPlain =
                !(isBlankOrEnd() || "-?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(c))
                || (c == "-" && !isBlank(1))
                || (flowLevel == 0 && (c == "?" || c == ":") && !isBlankOrEnd(1))
            guard startsPlain else { return fail() }
            saveSimpleKey()
            simpleKeyAllowed = false
            scanPlainScalar()
        }
    }

    private mutating func fetchValue() {
        let start = mark
        let last = simpleKeys.count - 1
        if simpleKeys[last].possible {
            let key = simpleKeys[last]
            enqueue(.key, at: key.mark, number: key.tokenNumber)
            rollIndent(key.mark.column, number: key.tokenNumber, .blockMappingStart, at: key.mark)
            simpleKeys[last].possible = false
            simpleKeyAllowed = false
        } else {
            if flowLevel == 0 {
                guard simpleKeyAllowed else { return fail() }
                rollIndent(mark.column, number: nil, .blockMappingStart, at: start)
            }
            simpleKeyAllowed = flowLevel == 0
        }
        skip()
        enqueue(.value, at: start)
    }

    /// Spaces, tabs where allowed, comments and line breaks before a token.
    private mutating func scanToNextToken() {
        while true {
            if mark.column == 0, check("\u{FEFF}") { skip() }
            while check(" ") || ((flowLevel > 0 || !simpleKeyAllowed) && check("\t")) { skip() }
            if check("#") {
                while !isBreakOrEnd() { skip() }
            }
            guard isBreak() else { return }
            skipLine()
            if flowLevel == 0 { simpleKeyAllowed = true }
        }
    }
}
