public import PrefectAPI

/// Why a collector failed in one poll.
public enum CollectorError: Error, Sendable, CustomStringConvertible {
    /// A Prefect API call failed.
    case api(PrefectAPIError)
    /// The collector needs another collector's data that has not been read yet (for example the
    /// workers need the work-pool list).
    case missingInput(String)

    /// The full, actionable message.
    public var message: String {
        switch self {
        case .api(let error): return error.message
        case .missingInput(let input):
            return "skipped: it needs \(input), which could not be read from Prefect yet (see that collector's error)"
        }
    }

    public var description: String { message }

    /// A short, stable reason, for de-duplicated logging.
    public var reason: String {
        switch self {
        case .api(let error): return "\(error.reason) \(error.endpoint)"
        case .missingInput: return "missing_input"
        }
    }

    /// The API error, when there is one.
    public var apiError: PrefectAPIError? {
        if case .api(let error) = self { return error }
        return nil
    }
}
