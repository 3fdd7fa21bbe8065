import CYaml

/// A pass over libyaml's events before Yams composes the document, refusing the YAML that
/// would make composing it explode:
///
/// - aliases of mappings or sequences: Yams copies the anchored node for every alias and hashes
///   mapping keys recursively, so a few nested aliases ("billion laughs") take exponential time
///   and memory. Aliases of scalars are harmless and allowed; web configuration files never
///   need the others.
/// - nesting deeper than ``maximumDepth``: Yams composes recursively, so a long run of `[` would
///   overflow the stack.
///
/// Syntax errors are left to Yams, which reports them with their position.
enum YAMLPrescan {
    /// Deepest nesting of mappings and sequences accepted (a web config needs 3).
    static let maximumDepth = 32

    static func check(_ bytes: [UInt8]) throws(WebConfigError) {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw WebConfigError(keyPath: "", problem: "cannot initialize the YAML parser (out of memory?)")
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml reads the input in place; it must stay valid until parsing ends.
        let result: WebConfigError? = bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return scan(&parser)
        }
        if let result { throw result }
    }

    /// Reads every event; returns the first problem, or nil.
    private static func scan(_ parser: inout yaml_parser_t) -> WebConfigError? {
        // Anchors as Yams registers them: a collection's anchor when the collection ends, a
        // scalar's at once; a later anchor of the same name replaces an earlier one.
        var collectionAnchors = Set<String>()
        var openAnchors: [String?] = []
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT, YAML_NO_EVENT:
                return nil
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                guard openAnchors.count < maximumDepth else {
                    return WebConfigError(
                        keyPath: "",
                        problem: "invalid YAML at line \(line), column \(column): nested deeper than \(maximumDepth) levels")
                }
                let anchor = event.type == YAML_SEQUENCE_START_EVENT
                    ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                openAnchors.append(anchor.map { String(cString: $0) })
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                if let anchor = openAnchors.popLast() ?? nil { collectionAnchors.insert(anchor) }
            case YAML_SCALAR_EVENT:
                if let anchor = event.data.scalar.anchor { collectionAnchors.remove(String(cString: anchor)) }
            case YAML_ALIAS_EVENT:
                if let anchor = event.data.alias.anchor, collectionAnchors.contains(String(cString: anchor)) {
                    return WebConfigError(
                        keyPath: "",
                        problem: "invalid YAML at line \(line), column \(column): aliases of mappings or lists are not supported")
                }
            default:
                break
            }
        }
    }
}
