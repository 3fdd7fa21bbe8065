// The prescan's verdict computed from libyaml's own events, to check the WebConfig module's
// YAMLPrescan (which reads the text with a tokenizer of its own) against it on every input.
// Only the fuzzer uses libyaml directly: build.sh compiles it from Yams' checkout.

import CYaml

enum LibyamlOracle {
    /// "nested" or "alias" where libyaml's events show nesting deeper than `maximumDepth` or an
    /// alias of a mapping or list (with Yams' anchor rules), before any error; nil otherwise.
    static func problem(in bytes: [UInt8], maximumDepth: Int = 32) -> String? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        // As Yams sets it: with the encoding given, libyaml's reader keeps a leading BOM, and the
        // scanner then skips it as a character of the first line.
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        return bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var collectionAnchors = Set<String>()
            var openAnchors: [String?] = []
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT, YAML_NO_EVENT:
                    return nil
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    guard openAnchors.count < maximumDepth else { return "nested" }
                    let anchor = event.type == YAML_SEQUENCE_START_EVENT
                        ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                    openAnchors.append(anchor.map { String(cString: $0) })
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    if let anchor = openAnchors.popLast() ?? nil { collectionAnchors.insert(anchor) }
                case YAML_SCALAR_EVENT:
                    if let anchor = event.data.scalar.anchor { collectionAnchors.remove(String(cString: anchor)) }
                case YAML_ALIAS_EVENT:
                    if let anchor = event.data.alias.anchor, collectionAnchors.contains(String(cString: anchor)) {
                        return "alias"
                    }
                default:
                    break
                }
            }
        }
    }
}
