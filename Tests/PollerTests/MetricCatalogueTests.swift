import Exposition
import Foundation
import Logging
@testable import Poller
@testable import Rendering
import Testing

@Suite("Metric catalogue")
struct MetricCatalogueTests {
    @Test func everyDeclarationIsValidAndDeclaredOnce() {
        let names = MetricCatalogue.entries.map(\.descriptor.name)
        #expect(Set(names).count == names.count)
        for entry in MetricCatalogue.entries {
            #expect(entry.descriptor.isValid, "\(entry.descriptor.name)")
            #expect(!entry.source.isEmpty, "\(entry.descriptor.name)")
            #expect(!entry.descriptor.help.isEmpty, "\(entry.descriptor.name)")
        }
    }

    @Test func invalidNamesAreRejected() {
        #expect(!FamilyDescriptor("9lives", .gauge, help: "x").isValid)
        #expect(!FamilyDescriptor("a-b", .gauge, help: "x").isValid)
        #expect(!FamilyDescriptor("a", .gauge, help: "x", labels: ["__name__"]).isValid)
        #expect(!FamilyDescriptor("a", .histogram, help: "x", labels: ["le"]).isValid)
        #expect(!FamilyDescriptor("a", .gauge, help: "x", labels: ["x", "x"]).isValid)
        #expect(FamilyDescriptor("a:b_c", .gauge, help: "x", labels: ["work_pool"]).isValid)
    }

    /// Every family on a real page (a poll of the recorded Prefect, merged and rendered) is in the
    /// catalogue with the same type and help, and its series carry exactly the declared labels.
    @Test func everyServedFamilyIsDeclared() async throws {
        let harness = try Harness()
        let (_, snapshot) = try await harness.poll(at: firstPoll)
        let merger = ExpositionMerger(
            settings: ExpositionMerger.Settings(), startTime: exporterStart,
            logger: Logger(label: "catalogue-tests", factory: { _ in SwiftLogNoOpLogHandler() })) { _ in }
        merger.update(target: 0, with: snapshot)
        let declared = Dictionary(uniqueKeysWithValues: MetricCatalogue.entries.map { ($0.descriptor.name, $0.descriptor) })
        let page = merger.current().families
        #expect(page.count > 30)
        for family in page {
            let declaration = try #require(declared[family.name], "\(family.name) is not declared")
            #expect(family.type == declaration.type, "\(family.name)")
            #expect(family.help == declaration.help, "\(family.name)")
            for metric in family.metrics {
                #expect(metric.labels.map(\.name) == declaration.labels, "\(family.name)")
            }
        }
    }

    @Test func jsonListsEveryFamily() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(MetricCatalogue.json().utf8)) as? [String: Any])
        let families = try #require(json["families"] as? [[String: Any]])
        #expect(families.compactMap { $0["name"] as? String } == MetricCatalogue.entries.map(\.descriptor.name))
        #expect(families.first { $0["name"] as? String == "prefect_flow_runs_late" }?["source"] as? String == "flow_runs_active")
    }
}
