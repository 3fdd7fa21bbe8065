public import HTTPClient

/// Why a Prefect API call failed, with a message that says what to check.
public struct PrefectAPIError: Error, Sendable, CustomStringConvertible {
    /// The class of failure. Stable: the poller maps it to log lines and metrics.
    public enum Kind: Sendable, Equatable {
        /// No HTTP response: refused, timed out, TLS failure and so on.
        case transport(HTTPClientError.Kind)
        /// 401: the credentials are missing or wrong.
        case unauthorized
        /// 403: the credentials were accepted, but they lack permission for this endpoint.
        case forbidden
        /// 404: usually an API URL without `/api`.
        case notFound
        /// 429, or 503 with `Retry-After`.
        case rateLimited
        /// Any other unexpected status.
        case httpStatus
        /// A 2xx response that is not the JSON we expect.
        case invalidResponse
    }

    public var kind: Kind
    /// The route template, e.g. `/work_pools/{name}/workers/filter`.
    public var endpoint: String
    /// The HTTP status, when there was a response.
    public var status: Int?
    /// Seconds the server asked us to wait, from `Retry-After`.
    public var retryAfter: Double?
    /// The full, actionable message.
    public var message: String

    public init(kind: Kind, endpoint: String, status: Int? = nil, retryAfter: Double? = nil, message: String) {
        self.kind = kind
        self.endpoint = endpoint
        self.status = status
        self.retryAfter = retryAfter
        self.message = message
    }

    public var description: String { message }

    /// Whether the request was never sent because of an earlier answer (Prefect's `Retry-After`
    /// pending, or a route at the limit learned from a 429): a consequence, not a cause. When
    /// several requests of one collector fail, the error reported is a cause where there is one.
    public var wasRefusedUnsent: Bool {
        kind == .rateLimited && status == nil
    }

    /// The error to report of several that failed together: the first that is a cause (not
    /// ``wasRefusedUnsent``), else the first; nil when there is none.
    public static func cause(among errors: [PrefectAPIError]) -> PrefectAPIError? {
        errors.first { !$0.wasRefusedUnsent } ?? errors.first
    }

    /// A short, stable reason for metrics and de-duplicated logging.
    public var reason: String {
        switch kind {
        case .transport(let kind): return kind.rawValue
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .notFound: return "not_found"
        case .rateLimited: return "rate_limited"
        case .httpStatus: return "http_error"
        case .invalidResponse: return "invalid_response"
        }
    }
}
