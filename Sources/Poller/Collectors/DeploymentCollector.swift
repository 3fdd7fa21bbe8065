import PrefectAPI

/// Every deployment, and the names of their flows (for `flow-name/deployment-name`).
struct DeploymentCollector: Collector {
    static let name = "deployments"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> (deployments: [Deployment], flowNames: [String: String]) {
        let deployments = try await context.client.deployments()
        let flows = try await context.client.flows(ids: deployments.map(\.flowID))
        return (deployments, flows.reduce(into: [:]) { $0[$1.id] = $1.name })
    }
}
