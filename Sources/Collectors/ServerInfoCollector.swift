import Aggregation
import Exposition
import PrefectAPI

/// The Prefect version (`/admin/version`, absent on Cloud) and API version (`/version`).
struct ServerInfoCollector: Collector {
    static let name = "server_info"
    static let stage = CollectorStage.inventory

    static let info = FamilyDescriptor(
        "prefect_server_info", .gauge,
        help: "Prefect server version (empty on Prefect Cloud) and API version; always 1.", labels: ["version", "api_version"])
    static let families = [info]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> (version: String?, apiVersion: String?) {
        do throws(PrefectAPIError) {
            return try await context.client.serverVersion()
        } catch {
            throw .api(error)
        }
    }

    static func contribute(_ output: (version: String?, apiVersion: String?), to data: inout PollData, selection: WorkPoolSelection) {
        data.serverVersion = output.version
        data.apiVersion = output.apiVersion
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let labels = [Label("version", input.data.serverVersion ?? ""), Label("api_version", input.data.apiVersion ?? "")]
        return [info.family([Metric(labels: labels, value: 1)])]
    }
}
