/// The Prefect server versions the exporter is tested against: CI runs the whole integration
/// suite against ``newest`` and a core subset (exact series, the read-only guarantee, counters)
/// against ``oldest``, each installed from a constraints file in `scripts/constraints/`. README's
/// "Supported Prefect versions" lists the same; `check` warns outside the lines between them.
enum SupportedPrefectVersions {
    /// The newest tested release; the default of `scripts/setup`.
    static let newest = "3.9.1"
    /// The oldest tested release.
    static let oldest = "3.4.25"

    /// A warning for a server that reports `version` (`/api/admin/version`), or nil when it is in
    /// the tested lines or reports none (Prefect Cloud has no `/admin`).
    static func warning(for version: String?) -> String? {
        guard let version, !version.isEmpty else { return nil }
        let tested = "tested with (\(line(oldest)) to \(line(newest)); CI runs \(oldest) and \(newest))"
        guard let reported = minor(of: version), let low = minor(of: oldest), let high = minor(of: newest) else {
            return "Prefect reports version '\(version)', which the exporter cannot compare with the versions it is \(tested)"
        }
        if reported < low || reported > high {
            return "Prefect \(version) is outside the versions this exporter is \(tested); its API may differ: compare "
                + "the counts above with Prefect's UI"
        }
        return nil
    }

    /// `3.9` for `3.9.1`.
    private static func line(_ version: String) -> String {
        version.split(separator: ".").prefix(2).joined(separator: ".")
    }

    /// (major, minor) of `3.9.1`, `3.10.0rc1` or `3.4.25.dev3`; nil when it does not start with two numbers.
    static func minor(of version: String) -> Version? {
        let parts = version.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1].prefix(while: \.isNumber)),
              !parts[1].isEmpty, parts[1].first?.isNumber == true
        else { return nil }
        return Version(major: major, minor: minor)
    }

    struct Version: Comparable {
        var major: Int
        var minor: Int

        static func < (lhs: Version, rhs: Version) -> Bool { (lhs.major, lhs.minor) < (rhs.major, rhs.minor) }
    }
}
