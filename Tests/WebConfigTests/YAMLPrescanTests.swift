import Testing
import WebConfig

/// A bcrypt hash of "U*U" (crypt_blowfish's test vector).
private let hash = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

/// The problem the parser reports, or nil when the text parses.
private func problem(_ yaml: String) -> String? {
    do {
        _ = try WebConfig.parse(Array(yaml.utf8))
        return nil
    } catch {
        return error.problem
    }
}

private func isPrescanProblem(_ text: String?) -> Bool {
    guard let text else { return false }
    return text.contains("nested deeper than 32 levels") || text.contains("aliases of mappings or lists are not supported")
}

/// The prescan reads the text with a tokenizer of its own (no libyaml): these cases check that it
/// sees the structure libyaml sees, no more and no less. The fuzzer checks the same against
/// libyaml's own events on every input.
@Suite("YAML prescan")
struct YAMLPrescanTests {
    @Test func structureInsideScalarsIsText() {
        let brackets = String(repeating: "[", count: 40)
        let yaml = "basic_auth_users:\n  alice: '\(hash)'\nhttp_server_config:\n  headers:\n"
            // A double-quoted value whose second line starts at column 0.
            + "    Content-Security-Policy: \"default-src \(brackets) *x\n\(brackets)]] 'self'\"\n"
            // A folded block scalar whose lines look like a list, a flow list and an alias.
            + "    Strict-Transport-Security: >-\n      \(brackets)\n      - *x\n      # not a comment\n"
            // A plain scalar continued on a more indented line.
            + "    X-XSS-Protection: 1; mode=block\n      [ *x - 'a\n"
        #expect(problem(yaml) == nil, "\(problem(yaml) ?? "")")
    }

    @Test func listsOfPairsNestTwoLevelsEach() {
        // `[k: ...]` is a list holding a one-pair mapping. Under the top mapping, 15 of them
        // nest 31 deep, 16 nest 33 deep.
        func pairs(_ count: Int) -> String {
            "a: " + String(repeating: "[k: ", count: count) + "v" + String(repeating: "]", count: count)
        }
        #expect(!isPrescanProblem(problem(pairs(15))), "\(problem(pairs(15)) ?? "")")
        #expect(problem(pairs(16))?.hasPrefix("invalid YAML at line 1, column ") == true)
        #expect(problem(pairs(16))?.hasSuffix("nested deeper than 32 levels") == true)
    }

    @Test func aFlowKeyIsInsideTheMappingItStarts() {
        // The block mapping `[[...]]: v` starts before its key (libyaml inserts it when the ':'
        // comes), so the key's lists are one level deeper than they look.
        func flowKey(_ depth: Int) -> String {
            "a:\n  " + String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth) + ": v\n"
        }
        #expect(!isPrescanProblem(problem(flowKey(30))), "\(problem(flowKey(30)) ?? "")")
        #expect(problem(flowKey(31)) == "invalid YAML at line 2, column 33: nested deeper than 32 levels")
    }

    @Test func listsAtTheirMappingsIndentationCount() {
        // Each `- kN:` opens a list at its mapping's indentation, then a mapping: two levels a line.
        func indentless(_ lines: Int) -> String {
            (0..<lines).map { String(repeating: " ", count: 2 * $0) + "- k\($0):" }.joined(separator: "\n")
                .replacingFirstDash() + " v\n"
        }
        #expect(!isPrescanProblem(problem(indentless(15))), "\(problem(indentless(15)) ?? "")")
        #expect(problem(indentless(17))?.hasSuffix("nested deeper than 32 levels") == true)
    }

    @Test func anchorsFollowTheirNodes() {
        // An anchor at the end of a line names what starts on the next one: here a list.
        #expect(problem("a: &l\n- x\nb: *l\n") == "invalid YAML at line 3, column 4: aliases of mappings or lists are not supported")
        #expect(problem("a: &m\n  k: v\nb: *m\n")?.hasSuffix("aliases of mappings or lists are not supported") == true)
        // ... or a scalar.
        #expect(problem("basic_auth_users:\n  alice: &h\n    '\(hash)'\n  bob: *h\n") == nil)
        // An anchor before a key on the same line names the key.
        #expect(!isPrescanProblem(problem("&k a: b\nc: *k\n")))
        // An alias inside the collection its anchor names refers to an earlier node (none here).
        #expect(problem("a: &x [*x]\n")?.contains("undefined alias") == true)
    }
}

extension String {
    /// "- k0:" at the top becomes "k0:", so the top level is a mapping.
    fileprivate func replacingFirstDash() -> String { hasPrefix("- ") ? String(dropFirst(2)) : self }
}
