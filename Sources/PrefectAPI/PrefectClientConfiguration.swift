/// How the exporter authenticates to Prefect.
public enum PrefectAuth: Sendable, Equatable {
    /// No credentials: a local, open server.
    case none
    /// Prefect Cloud: `Authorization: Bearer <api key>`.
    case apiKey(String)
    /// Self-hosted with `PREFECT_SERVER_API_AUTH_STRING`: `Authorization: Basic base64(user:pass)`.
    case basic(String)

    /// What a user should check when Prefect rejects the credentials.
    public var credentialHint: String {
        switch self {
        case .none:
            return "the server requires credentials: set PREFECT_API_KEY (Prefect Cloud) or "
                + "PREFECT_API_AUTH_STRING (self-hosted basic auth), or the --prefect.api-key-file / "
                + "--prefect.auth-string-file flags"
        case .apiKey:
            return "check the API key from PREFECT_API_KEY or --prefect.api-key-file: it may be wrong, "
                + "expired, or lack access to this workspace"
        case .basic:
            return "check the user:pass from PREFECT_API_AUTH_STRING or --prefect.auth-string-file against "
                + "the server's PREFECT_SERVER_API_AUTH_STRING"
        }
    }
}

/// Settings of a ``PrefectClient``.
public struct PrefectClientConfiguration: Sendable {
    /// The API root, e.g. `http://127.0.0.1:4200/api`, without a trailing slash.
    public var baseURL: String
    public var auth: PrefectAuth
    /// Extra attempts after a failed request (transport errors, 5xx without `Retry-After`).
    public var retries: Int
    /// The first backoff delay; it doubles each retry, with jitter, up to 2 s.
    public var retryBaseDelay: Duration
    /// Page size for `…/filter` calls; Prefect's maximum is 200.
    public var pageSize: Int
    /// Requests in flight at once.
    public var maxConcurrentRequests: Int
    /// At most this many requests in any minute (see ``RequestPacer``); nil for no bound.
    public var maxRequestsPerMinute: Int?
    /// Where the credential came from, for messages: `--prefect.api-key-file /run/secrets/key`,
    /// `PREFECT_API_KEY`; nil when unknown. Never the credential itself.
    public var credentialSource: String?

    /// What a user should check when Prefect rejects the credentials, naming where they came from.
    public var credentialHint: String {
        guard let credentialSource else { return auth.credentialHint }
        switch auth {
        case .none: return auth.credentialHint
        case .apiKey:
            return "check the API key from \(credentialSource): it may be wrong, expired, or lack access to this workspace"
        case .basic:
            return "check the user:pass from \(credentialSource) against the server's PREFECT_SERVER_API_AUTH_STRING"
        }
    }

    public init(
        baseURL: String, auth: PrefectAuth = .none, retries: Int = 2, retryBaseDelay: Duration = .milliseconds(200),
        pageSize: Int = 200, maxConcurrentRequests: Int = 4, maxRequestsPerMinute: Int? = nil,
        credentialSource: String? = nil
    ) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.baseURL = trimmed
        self.auth = auth
        self.retries = max(0, retries)
        self.retryBaseDelay = retryBaseDelay
        self.pageSize = min(max(1, pageSize), 200)
        self.maxConcurrentRequests = max(1, maxConcurrentRequests)
        self.maxRequestsPerMinute = maxRequestsPerMinute.map { max(1, $0) }
        self.credentialSource = credentialSource
    }

    /// The base URL with any `user:pass@` removed, for logs and the landing page.
    public var redactedBaseURL: String {
        guard let scheme = baseURL.firstRange(of: "://") else { return baseURL }
        let rest = baseURL[scheme.upperBound...]
        let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<hostEnd].lastIndex(of: "@") else { return baseURL }
        return String(baseURL[..<scheme.upperBound]) + String(rest[rest.index(after: at)...])
    }
}
