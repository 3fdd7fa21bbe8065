/// A pass over the YAML's tokens before Yams composes the document, refusing the YAML that
/// would make composing it explode:
///
/// - aliases of mappings or sequences: Yams copies the anchored node for every alias and hashes
///   mapping keys recursively, so a few nested aliases ("billion laughs") take exponential time
///   and memory. Aliases of scalars are harmless and allowed; web configuration files never
///   need the others.
/// - nesting deeper than ``maximumDepth``: Yams composes recursively, so a long run of `[` would
///   overflow the stack.
///
/// The tokens come from ``YAMLScanner``, which splits the text as libyaml does; this pass turns
/// them into the mappings and lists that libyaml's parser reports to Yams, the implicit ones
/// included (a `key: value` pair inside `[...]`, a list at its mapping's own indentation).
/// Syntax errors are left to Yams, which reports them with their position: the pass stops where
/// libyaml would stop, and accepts.
enum YAMLPrescan {
    /// Deepest nesting of mappings and sequences accepted (a web config needs 3).
    static let maximumDepth = 32

    private enum Collection {
        case blockSequence, blockMapping, indentlessSequence, flowSequence, flowMapping, pairInFlowSequence
    }

    /// Throws the first problem in the text, if any.
    static func check(_ text: String) throws(WebConfigError) {
        var scan = Scan()
        var scanner = YAMLScanner(text)
        while let (token, mark) = scanner.next() {
            if let problem = scan.read(token, at: mark) { throw problem }
            if scan.stopped { return }
        }
    }

    /// The collections open at the current token, and the anchors that name collections.
    private struct Scan {
        /// Open collections, innermost last, each with its anchor.
        var open: [(kind: Collection, anchor: String?)] = []
        /// Anchors as Yams registers them: a collection's anchor when the collection ends, a
        /// scalar's at once; a later anchor of the same name replaces an earlier one.
        var collectionAnchors = Set<String>()
        /// The anchor read for the next node, and where the next node's properties began.
        var anchor: String?
        var propertiesMark: YAMLMark?
        /// Set where libyaml's parser would fail: nothing after it is composed.
        var stopped = false

        mutating func read(_ token: YAMLToken, at mark: YAMLMark) -> WebConfigError? {
            switch token {
            case .anchor(let name):
                guard anchor == nil else {
                    stopped = true  // two anchors on one node
                    return nil
                }
                anchor = name
                propertiesMark = propertiesMark ?? mark
            case .tag:
                propertiesMark = propertiesMark ?? mark
            case .alias(let name):
                guard propertiesMark == nil else {
                    stopped = true  // an alias cannot have an anchor or a tag
                    return nil
                }
                if collectionAnchors.contains(name) {
                    return problem(at: mark, "aliases of mappings or lists are not supported")
                }
            case .scalar:
                endScalar()
            case .blockSequenceStart:
                return start(.blockSequence, at: mark)
            case .blockMappingStart:
                return start(.blockMapping, at: mark)
            case .flowSequenceStart:
                return start(.flowSequence, at: mark)
            case .flowMappingStart:
                return start(.flowMapping, at: mark)
            case .blockEntry:
                // In a block mapping, an entry at the mapping's own indentation starts a list.
                if open.last?.kind == .blockMapping { return start(.indentlessSequence, at: mark) }
                endScalar()
            case .key, .value:
                endScalar()
                if open.last?.kind == .indentlessSequence { end() }
                if token == .key, open.last?.kind == .flowSequence { return start(.pairInFlowSequence, at: mark) }
            case .flowEntry:
                endScalar()
                if open.last?.kind == .pairInFlowSequence { end() }
            case .flowSequenceEnd, .flowMappingEnd:
                endScalar()
                if open.last?.kind == .pairInFlowSequence { end() }
                if open.last?.kind == .flowSequence || open.last?.kind == .flowMapping { end() }
            case .blockEnd:
                endScalar()
                if open.last?.kind == .indentlessSequence { end() }
                if open.last?.kind == .blockSequence || open.last?.kind == .blockMapping { end() }
            case .documentMarker, .streamEnd:
                endScalar()
            }
            return nil
        }

        /// A collection starts here; it takes the pending anchor.
        private mutating func start(_ kind: Collection, at mark: YAMLMark) -> WebConfigError? {
            guard open.count < maximumDepth else {
                return problem(at: propertiesMark ?? mark, "nested deeper than \(maximumDepth) levels")
            }
            open.append((kind, anchor))
            anchor = nil
            propertiesMark = nil
            return nil
        }

        private mutating func end() {
            if let anchor = open.popLast()?.anchor { collectionAnchors.insert(anchor) }
        }

        /// A scalar ends here, or a node with properties and no content (an empty scalar).
        private mutating func endScalar() {
            if let anchor { collectionAnchors.remove(anchor) }
            anchor = nil
            propertiesMark = nil
        }

        private func problem(at mark: YAMLMark, _ what: String) -> WebConfigError {
            WebConfigError(keyPath: "", problem: "invalid YAML at line \(mark.line + 1), column \(mark.column + 1): \(what)")
        }
    }
}
