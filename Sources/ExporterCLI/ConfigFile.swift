import FoundationEssentials
import Yams

/// The YAML file of `--config.file`: a key for every setting flag, and optional Prefect targets.
///
/// Keys mirror the flags: `--prefect.poll-interval` is `prefect: {poll_interval: …}`, `--web.listen-address`
/// is `web: {listen_address: …}`, `--no-metrics.deployment-label` is `metrics: {deployment_label: false}`.
/// Every key is optional; a null value (`key:` or `key: ~`) counts as unset. Unknown keys and values of the
/// wrong type are errors naming the key's path and line. Values are checked like the flags' values, later,
/// in ``ExporterConfiguration/resolve(_:environment:)``.
///
/// ```yaml
/// prefect:
///   poll_interval: 30s
///   lateness_buckets: [15, 60, 300]
/// web:
///   listen_address: ":14200"
/// targets:
///   - name: prod
///     api_url: https://prefect.example.com/api
///     auth_string_file: /run/secrets/prefect-prod
/// ```
struct ConfigFile: Sendable {
    /// The type a key expects.
    enum Kind: Sendable {
        /// Any scalar, taken as written (durations, URLs, paths, patterns, names).
        case string
        case integer
        case boolean
        /// A list of numbers, or a comma-separated string of them.
        case numberList

        var expectation: String {
            switch self {
            case .string: return "a string"
            case .integer: return "an integer"
            case .boolean: return "true or false"
            case .numberList: return "a list of numbers such as [15, 30, 60]"
            }
        }
    }

    /// One value, with where it was written.
    struct Value: Sendable, Equatable {
        enum Content: Sendable, Equatable {
            case string(String)
            case integer(Int)
            case boolean(Bool)
        }

        var content: Content
        /// The line of the value in the file, from 1.
        var line: Int?

        var string: String? {
            if case .string(let text) = content { return text }
            return nil
        }

        var integer: Int? {
            if case .integer(let value) = content { return value }
            return nil
        }

        var boolean: Bool? {
            if case .boolean(let value) = content { return value }
            return nil
        }
    }

    /// One entry of `targets:`.
    struct Target: Sendable {
        var name: String
        /// Its position in the list, for messages (`targets[1].api_url`).
        var index: Int
        /// Values by key (`api_url`, `api_key_file`, …).
        var values: [String: Value]
    }

    /// The keys of each section; a section's keys are written `section.key` in messages.
    static let sections: [(name: String, keys: [(String, Kind)])] = [
        ("prefect", [
            ("api_url", .string), ("api_key_file", .string), ("auth_string_file", .string), ("ca_file", .string),
            ("insecure_skip_verify", .boolean), ("poll_interval", .string), ("timeout", .string),
            ("connect_timeout", .string), ("max_staleness", .string), ("late_after", .string),
            ("max_concurrent_requests", .integer), ("max_requests_per_minute", .integer), ("retries", .integer),
            ("lateness_buckets", .numberList),
            ("work_pool_include", .string), ("work_pool_exclude", .string),
        ]),
        ("metrics", [("deployment_label", .boolean), ("exemplars", .boolean), ("max_series_per_family", .integer)]),
        ("web", [("listen_address", .string), ("telemetry_path", .string), ("max_connections", .integer), ("config_file", .string)]),
        ("log", [("level", .string), ("format", .string)]),
    ]

    /// The keys of a target.
    static let targetKeys: [(String, Kind)] = [
        ("name", .string), ("api_url", .string), ("api_key_file", .string), ("auth_string_file", .string),
        ("ca_file", .string), ("insecure_skip_verify", .boolean), ("work_pool_include", .string),
        ("work_pool_exclude", .string), ("max_requests_per_minute", .integer),
    ]

    /// The path as given to `--config.file`.
    let path: String
    /// Set values by dotted key, e.g. `prefect.poll_interval`.
    private(set) var values: [String: Value] = [:]
    /// The targets, when the file has `targets:`.
    private(set) var targets: [Target]?

    /// A file's value for a dotted key, e.g. `prefect.poll_interval`.
    subscript(key: String) -> Value? { values[key] }

    /// How messages name a key: `path:line: key`.
    func origin(_ key: String, line: Int?) -> String {
        line.map { "\(path):\($0): \(key)" } ?? "\(path): \(key)"
    }

    /// The origin of a set value.
    func origin(_ key: String) -> String {
        origin(key, line: values[key]?.line)
    }

    /// The origin of a target's value: `path:line: targets[1].api_url`.
    func origin(target: Target, key: String) -> String {
        origin("targets[\(target.index)].\(key)", line: target.values[key]?.line)
    }

    /// Reads and checks a file.
    /// - Throws: ``ConfigurationError`` naming the file, and the key's path and line when a key is at fault.
    static func load(path: String) throws(ConfigurationError) -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(setting: "--config.file", problem: "cannot read \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(setting: "--config.file", problem: "\(path) is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Parses YAML text; `path` is only used in messages.
    static func parse(_ text: String, path: String) throws(ConfigurationError) -> ConfigFile {
        var file = ConfigFile(path: path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(setting: path, problem: describe(yamlError: error))
        }
        guard let root, root.null == nil else { return file }  // An empty file sets nothing.
        guard case .mapping(let mapping) = root else {
            throw ConfigurationError(
                setting: file.origin("(top level)", line: root.mark?.line),
                problem: "expected a mapping of sections (prefect, metrics, web, log, targets), got \(describe(root))")
        }
        let sectionNames = sections.map(\.name) + ["targets"]
        for (keyNode, valueNode) in mapping {
            let section = try key(keyNode, path: "", file: file)
            guard sectionNames.contains(section) else {
                throw unknownKey(section, known: sectionNames, line: keyNode.mark?.line, file: file)
            }
            if valueNode.null != nil { continue }
            if section == "targets" {
                file.targets = try parseTargets(valueNode, file: file)
                continue
            }
            guard case .mapping(let entries) = valueNode else {
                throw ConfigurationError(
                    setting: file.origin(section, line: valueNode.mark?.line),
                    problem: "expected a mapping of keys, got \(describe(valueNode))")
            }
            let keys = sections.first { $0.name == section }?.keys ?? []
            for (entryKey, entryValue) in entries {
                let name = try key(entryKey, path: section + ".", file: file)
                guard let kind = keys.first(where: { $0.0 == name })?.1 else {
                    throw unknownKey("\(section).\(name)", known: keys.map { "\(section).\($0.0)" }, line: entryKey.mark?.line, file: file)
                }
                if let value = try value(entryValue, kind: kind, key: "\(section).\(name)", file: file) {
                    file.values["\(section).\(name)"] = value
                }
            }
        }
        if let targets = file.targets {
            for key in ["prefect.api_url", "prefect.api_key_file", "prefect.auth_string_file", "prefect.work_pool_include", "prefect.work_pool_exclude"]
            where file.values[key] != nil {
                let targetKey = String(key.dropFirst("prefect.".count))
                throw ConfigurationError(
                    setting: file.origin(key),
                    problem: "cannot be combined with targets (\(targets.count) listed); set \(targetKey) on each target instead")
            }
        }
        try checkSingleCredential(
            apiKey: file.values["prefect.api_key_file"], authString: file.values["prefect.auth_string_file"],
            origin: file.origin("prefect.auth_string_file"))
        return file
    }

    private static func parseTargets(_ node: Node, file: ConfigFile) throws(ConfigurationError) -> [Target] {
        guard case .sequence(let sequence) = node else {
            throw ConfigurationError(
                setting: file.origin("targets", line: node.mark?.line),
                problem: "expected a list of targets such as [{name: prod, api_url: https://prefect.example.com/api}], got \(describe(node))")
        }
        guard !sequence.isEmpty else {
            throw ConfigurationError(
                setting: file.origin("targets", line: node.mark?.line),
                problem: "lists no target; remove it, or list at least one target with a name and an api_url")
        }
        var targets: [Target] = []
        for (index, entry) in sequence.enumerated() {
            let prefix = "targets[\(index)]"
            guard case .mapping(let mapping) = entry else {
                throw ConfigurationError(
                    setting: file.origin(prefix, line: entry.mark?.line),
                    problem: "expected a mapping with name and api_url, got \(describe(entry))")
            }
            var values: [String: Value] = [:]
            for (keyNode, valueNode) in mapping {
                let name = try key(keyNode, path: prefix + ".", file: file)
                guard let kind = targetKeys.first(where: { $0.0 == name })?.1 else {
                    throw unknownKey("\(prefix).\(name)", known: targetKeys.map { "\(prefix).\($0.0)" }, line: keyNode.mark?.line, file: file)
                }
                if let value = try value(valueNode, kind: kind, key: "\(prefix).\(name)", file: file) {
                    values[name] = value
                }
            }
            for required in ["name", "api_url"] where values[required] == nil {
                throw ConfigurationError(
                    setting: file.origin("\(prefix).\(required)", line: entry.mark?.line), problem: "missing; every target needs a name and an api_url")
            }
            let name = values["name"]?.string ?? ""
            guard !name.isEmpty, name.count <= 128, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ConfigurationError(
                    setting: file.origin("\(prefix).name", line: values["name"]?.line),
                    problem: "must be a non-empty name of at most 128 characters without control characters")
            }
            if let earlier = targets.first(where: { $0.name == name }) {
                throw ConfigurationError(
                    setting: file.origin("\(prefix).name", line: values["name"]?.line),
                    problem: "'\(name)' is already the name of targets[\(earlier.index)]; each target needs its own name (the prefect label)")
            }
            try checkSingleCredential(
                apiKey: values["api_key_file"], authString: values["auth_string_file"],
                origin: file.origin("\(prefix).auth_string_file", line: values["auth_string_file"]?.line))
            targets.append(Target(name: name, index: index, values: values))
        }
        return targets
    }

    private static func checkSingleCredential(apiKey: Value?, authString: Value?, origin: String) throws(ConfigurationError) {
        guard apiKey != nil, authString != nil else { return }
        throw ConfigurationError(
            setting: origin,
            problem: "both api_key_file and auth_string_file are set; set only one (an API key for Prefect Cloud, user:pass for a self-hosted server)")
    }

    /// A mapping key, which must be a plain string.
    private static func key(_ node: Node, path: String, file: ConfigFile) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else {
            throw ConfigurationError(
                setting: file.origin(path.isEmpty ? "(top level)" : String(path.dropLast()), line: node.mark?.line),
                problem: "keys must be plain names, got \(describe(node))")
        }
        return scalar.string
    }

    private static func unknownKey(_ key: String, known: [String], line: Int?, file: ConfigFile) -> ConfigurationError {
        let name = key.split(separator: ".").last.map(String.init) ?? key
        let suggestion = known
            .map { (candidate: $0, distance: editDistance(name, $0.split(separator: ".").last.map(String.init) ?? $0)) }
            .filter { $0.distance <= 2 }
            .min { $0.distance < $1.distance }
        let hint = suggestion.map { "; did you mean \($0.candidate)?" }
            ?? "; known keys here: \(known.map { $0.split(separator: ".").last.map(String.init) ?? $0 }.joined(separator: ", "))"
        return ConfigurationError(setting: file.origin(key, line: line), problem: "unknown key" + hint)
    }

    /// A value of the expected kind, or nil for a YAML null (unset).
    private static func value(_ node: Node, kind: Kind, key: String, file: ConfigFile) throws(ConfigurationError) -> Value? {
        if node.null != nil { return nil }
        let line = node.mark?.line
        func wrongType() -> ConfigurationError {
            ConfigurationError(setting: file.origin(key, line: line), problem: "expected \(kind.expectation), got \(describe(node))")
        }
        switch kind {
        case .string:
            guard case .scalar(let scalar) = node else { throw wrongType() }
            return Value(content: .string(scalar.string), line: line)
        case .integer:
            guard node.tag.rawValue == Tag.Name.int.rawValue, let value = node.int else { throw wrongType() }
            return Value(content: .integer(value), line: line)
        case .boolean:
            guard node.tag.rawValue == Tag.Name.bool.rawValue, let value = node.bool else { throw wrongType() }
            return Value(content: .boolean(value), line: line)
        case .numberList:
            switch node {
            case .scalar(let scalar):
                return Value(content: .string(scalar.string), line: line)
            case .sequence(let sequence):
                var numbers: [String] = []
                for element in sequence {
                    guard case .scalar(let scalar) = element, element.tag.rawValue == Tag.Name.int.rawValue || element.tag.rawValue == Tag.Name.float.rawValue else {
                        throw wrongType()
                    }
                    numbers.append(scalar.string)
                }
                return Value(content: .string(numbers.joined(separator: ",")), line: line)
            default:
                throw wrongType()
            }
        }
    }

    /// How a node reads in a message: `'text'`, `a list` or `a mapping`.
    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return "'\(scalar.string)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    /// One line from a Yams error: `line 3, column 5: did not find expected key`.
    static func describe(yamlError error: any Error) -> String {
        guard let error = error as? YamlError else { return "invalid YAML: \(error)" }
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "invalid YAML at line \(context.mark.line): key \(duplicates.sorted().joined(separator: ", ")) appears more than once in one mapping"
        case .reader(let problem, _, _, _):
            return "invalid YAML: \(problem)"
        default:
            let text = "\(error)"
            return "invalid YAML: " + (text.split(separator: "\n").first.map(String.init) ?? text)
        }
    }

    /// Levenshtein distance, for "did you mean" hints.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs)
        let b = Array(rhs)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
