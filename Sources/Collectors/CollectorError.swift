public import PrefectAPI

/// Why a collector failed in one poll.
public enum CollectorError: Error, Sendable, CustomStringConvertible {
    /// A Prefect API call failed.
    case api(PrefectAPIError)
    /// The collector needs another collector's data that has not been read yet (for example the
    /// workers need the work-pool list).
    case missingInput(String)
    /// A large pile of due runs is being listed for the first time, a page budget per poll; the
    /// families appear once the listing is complete.
    case listingDueRuns(listed: Int)

    /// The full, actionable message.
    public var message: String {
        switch self {
        case .api(let error): return error.message
        case .missingInput(let input):
            return "skipped: it needs \(input), which could not be read from Prefect yet (see that collector's error)"
        case .listingDueRuns(let listed):
            return "listing the due scheduled runs once, over several polls (\(listed) so far); its families appear "
                + "when the listing is complete, and later polls list only what changed"
        }
    }

    public var description: String { message }

    /// A short, stable reason, for logs (`reason=timeout`).
    public var reason: String {
        switch self {
        case .api(let error): return error.reason
        case .missingInput: return "missing_input"
        case .listingDueRuns: return "listing_due_runs"
        }
    }

    /// What makes two failures of one collector the same cause, so that a cause is logged once:
    /// its reason (a collector that calls two endpoints and fails on either is one cause).
    public var cause: String { reason }

    /// Whether the collector was skipped for want of another collector's data.
    public var isMissingInput: Bool {
        if case .missingInput = self { return true }
        return false
    }

    /// The API error, when there is one.
    public var apiError: PrefectAPIError? {
        if case .api(let error) = self { return error }
        return nil
    }

    /// The error to report of several that failed together: the first that is a cause (not a
    /// request refused unsent because of another answer), else the first; nil when there is none.
    static func cause(among errors: [CollectorError]) -> CollectorError? {
        errors.first { !($0.apiError?.wasRefusedUnsent ?? false) } ?? errors.first
    }
}
