/// Why the web server could not be configured or started.
///
/// ``description`` is one line meant for the user, for example
/// `cannot listen on :14200: address already in use`.
public struct WebServerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The broad reason, for callers that react differently to different failures.
    public enum Kind: Sendable, Equatable {
        /// The listen address could not be parsed or resolved.
        case invalidAddress
        /// Another process (or server) already listens on the address.
        case addressInUse
        /// Creating, binding or listening on the socket failed for another reason.
        case listenFailed
        /// A configuration value is out of range.
        case invalidConfiguration
        /// libmicrohttpd refused to start.
        case startFailed
    }

    /// The broad reason.
    public let kind: Kind
    /// A one-line message naming the problem.
    public let description: String

    /// Creates an error of the given kind with a one-line message.
    public init(kind: Kind, description: String) {
        self.kind = kind
        self.description = description
    }
}
