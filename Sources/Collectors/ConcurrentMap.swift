import PrefectAPI

/// Runs an async throwing body and captures its outcome, so that concurrent requests can be
/// started with `async let` and their typed errors surfaced afterwards.
func capture<Output, Failure: Error>(_ body: () async throws(Failure) -> Output) async -> Result<Output, Failure> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}

extension Result {
    /// The error, when this is a failure.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// Runs `transform` on every element concurrently (the client bounds requests in flight) and
/// returns the results in input order, or an error: the first that is a cause
/// (``PrefectAPIError/cause(among:)``), so that a 503 is reported rather than the requests that
/// were not sent because of it.
func concurrentMap<Element: Sendable, Output: Sendable>(
    _ elements: [Element], _ transform: @escaping @Sendable (Element) async throws(PrefectAPIError) -> Output
) async throws(PrefectAPIError) -> [Output] {
    let results = await concurrentResults(elements, transform)
    var outputs: [Output] = []
    var errors: [PrefectAPIError] = []
    for result in results {
        switch result {
        case .success(let output): outputs.append(output)
        case .failure(let error): errors.append(error)
        }
    }
    if let cause = PrefectAPIError.cause(among: errors) { throw cause }
    return outputs
}

/// Runs `transform` on every element concurrently (the client bounds requests in flight) and
/// returns each result, success or failure, in input order.
func concurrentResults<Element: Sendable, Output: Sendable>(
    _ elements: [Element], _ transform: @escaping @Sendable (Element) async throws(PrefectAPIError) -> Output
) async -> [Result<Output, PrefectAPIError>] {
    await withTaskGroup(of: (Int, Result<Output, PrefectAPIError>).self) { group in
        for (index, element) in elements.enumerated() {
            group.addTask {
                (index, await capture { () async throws(PrefectAPIError) in try await transform(element) })
            }
        }
        var collected: [(Int, Result<Output, PrefectAPIError>)] = []
        for await result in group { collected.append(result) }
        return collected.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
