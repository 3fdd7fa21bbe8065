import Foundation
import HTTPClient
@testable import PrefectAPI
import Testing
import Locking

/// The bytes of a recorded fixture in `Fixtures/`.
func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(
        Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"), "missing fixture \(name).json")
    return Array(try Data(contentsOf: url))
}

func decodeFixture<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(try fixture(name)))
}

/// Epoch seconds of an ISO timestamp that must parse.
func epoch(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
    try #require(PrefectTimestamp.parse(text), "unparseable \(text)", sourceLocation: sourceLocation)
}

/// A transport that answers from a closure and records every request.
final class FakeTransport: HTTPTransport {
    typealias Handler = @Sendable (HTTPRequest, Int) async -> Result<HTTPResponse, HTTPClientError>

    private let handler: Handler
    private let log = LockedValue<[HTTPRequest]>([])
    private let inFlight = LockedValue((current: 0, maximum: 0))

    /// - Parameter handler: gets the request and its 0-based index among all requests.
    init(_ handler: @escaping Handler) {
        self.handler = handler
    }

    /// Answers every request with the same response.
    convenience init(status: Int, headers: [String: String] = [:], body: String = "") {
        self.init { _, _ in .success(HTTPResponse(status: status, headers: headers, body: Array(body.utf8))) }
    }

    func perform(_ request: HTTPRequest) async throws(HTTPClientError) -> HTTPResponse {
        let index = log.withLock { log -> Int in
            log.append(request)
            return log.count - 1
        }
        inFlight.withLock { state in
            state.current += 1
            state.maximum = max(state.maximum, state.current)
        }
        let result = await handler(request, index)
        inFlight.withLock { $0.current -= 1 }
        return try result.get()
    }

    var requests: [HTTPRequest] { log.withLock { $0 } }
    var maximumInFlight: Int { inFlight.withLock { $0.maximum } }

    /// Request bodies as text, in order.
    var bodies: [String] { requests.map { String(decoding: $0.body ?? [], as: UTF8.self) } }
    /// Request paths relative to the fake base URL.
    var paths: [String] { requests.map { String($0.url.dropFirst(FakeTransport.baseURL.count)) } }

    static let baseURL = "http://prefect.test:4200/api"
}

extension HTTPRequest {
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var bodyText: String { String(decoding: body ?? [], as: UTF8.self) }
}

func ok(_ body: String, headers: [String: String] = [:]) -> Result<HTTPResponse, HTTPClientError> {
    .success(HTTPResponse(status: 200, headers: headers, body: Array(body.utf8)))
}

func status(_ code: Int, _ body: String = "", headers: [String: String] = [:]) -> Result<HTTPResponse, HTTPClientError> {
    .success(HTTPResponse(status: code, headers: headers, body: Array(body.utf8)))
}

/// Collects observer records.
final class RecordLog: Sendable {
    private let records = LockedValue<[RequestRecord]>([])
    func record(_ record: RequestRecord) { records.withLock { $0.append(record) } }
    var all: [RequestRecord] { records.withLock { $0 } }
}

func makeClient(
    _ transport: FakeTransport, auth: PrefectAuth = .none, retries: Int = 2, pageSize: Int = 200,
    maxConcurrentRequests: Int = 4, baseURL: String = FakeTransport.baseURL, log: RecordLog? = nil
) -> PrefectClient {
    PrefectClient(
        configuration: PrefectClientConfiguration(
            baseURL: baseURL, auth: auth, retries: retries, retryBaseDelay: .milliseconds(1), pageSize: pageSize,
            maxConcurrentRequests: maxConcurrentRequests),
        transport: transport,
        observer: { record in log?.record(record) })
}

/// Runs a throwing client call and returns its error, recording an issue if it succeeded.
func expectAPIError<T>(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> PrefectAPIError? {
    do {
        let value = try await body()
        Issue.record("expected a PrefectAPIError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as PrefectAPIError {
        return error
    } catch {
        Issue.record("expected a PrefectAPIError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
