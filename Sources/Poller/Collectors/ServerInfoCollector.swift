import PrefectAPI

/// The Prefect version (`/admin/version`, absent on Cloud) and API version (`/version`).
struct ServerInfoCollector: Collector {
    static let name = "server_info"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> (version: String?, apiVersion: String?) {
        try await context.client.serverVersion()
    }
}
