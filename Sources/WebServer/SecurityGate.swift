import Logging
import WebConfig

/// What the server checks on every request when a web configuration is in force: the client
/// certificate (per `client_auth_type`), then basic auth; and the headers it adds to every response.
final class SecurityGate: Sendable {
    let clientAuth: WebConfig.ClientAuthType
    let authenticator: BasicAuthenticator?
    let headers: [HTTPHeader]
    private let unauthorized = ResponseBody("401 Unauthorized\n")
    private let forbidden = ResponseBody("403 Forbidden: a valid client certificate is required\n")

    init(security: WebSecurity) {
        clientAuth = security.tls?.clientAuth ?? .noClientCert
        authenticator = security.config.basicAuthUsers.isEmpty ? nil : BasicAuthenticator(users: security.config.basicAuthUsers)
        headers = security.config.headers.sorted { $0.key < $1.key }.map { HTTPHeader($0.key, $0.value) }
    }

    /// The response refusing the request, or nil to let it through.
    func deny(_ request: Request, tlsSession: UnsafeMutableRawPointer?, logger: Logger) -> Response? {
        if clientAuth.requiresCertificate || clientAuth.verifiesCertificate {
            if let problem = ClientCertificate.problem(session: tlsSession.map(OpaquePointer.init), policy: clientAuth) {
                logger.debug("Request refused: client certificate \(problem)", metadata: ["path": "\(request.path)"])
                return Response(
                    status: 403, contentType: ExporterRoutes.textContentType, headers: [HTTPHeader("Connection", "close")],
                    body: forbidden)
            }
        }
        if let authenticator, !authenticator.authenticate(authorization: request.header("Authorization")) {
            logger.debug("Request refused: missing or wrong basic auth credentials", metadata: ["path": "\(request.path)"])
            return Response(
                status: 401, contentType: ExporterRoutes.textContentType,
                headers: [HTTPHeader("WWW-Authenticate", BasicAuthenticator.challenge)], body: unauthorized)
        }
        return nil
    }
}
