import Exposition
import Testing

@Suite("Histogram")
struct HistogramTests {
    @Test func boundaryValuesLandInTheBucketOfThatBound() {
        var histogram = Histogram(upperBounds: [1, 2, 5])
        histogram.observe(1)
        histogram.observe(2)
        histogram.observe(5)
        #expect(histogram.bucketCounts == [1, 1, 1, 0])
        #expect(histogram.cumulativeCounts == [1, 2, 3])
        #expect(histogram.count == 3)
        #expect(histogram.sum == 8)
    }

    @Test func valuesJustAboveABoundGoToTheNextBucket() {
        var histogram = Histogram(upperBounds: [1, 2])
        histogram.observe(1.0000001)
        histogram.observe(1.0.nextUp)
        #expect(histogram.bucketCounts == [0, 2, 0])
        #expect(histogram.cumulativeCounts == [0, 2])
    }

    @Test func valuesAboveEveryBoundOnlyCountInInf() {
        var histogram = Histogram(upperBounds: [1, 2])
        histogram.observe(2.5)
        histogram.observe(1e9)
        histogram.observe(.infinity)
        #expect(histogram.bucketCounts == [0, 0, 3])
        #expect(histogram.cumulativeCounts == [0, 0])
        #expect(histogram.count == 3)
        #expect(histogram.sum == .infinity)
    }

    @Test func smallAndNegativeValuesGoToTheFirstBucket() {
        var histogram = Histogram(upperBounds: [0, 10])
        histogram.observe(-5)
        histogram.observe(0)
        histogram.observe(-.infinity)
        #expect(histogram.bucketCounts == [3, 0, 0])
        #expect(histogram.cumulativeCounts == [3, 3])
    }

    @Test func nanIsIgnored() {
        var histogram = Histogram(upperBounds: [1])
        histogram.observe(.nan)
        #expect(histogram.count == 0)
        #expect(histogram.sum == 0)
        #expect(histogram.bucketCounts == [0, 0])
    }

    @Test func cumulativeCountsAndSum() {
        var histogram = Histogram(upperBounds: [15, 30, 60, 120])
        for value in [1.0, 14, 15, 16, 29, 45, 60, 61, 119, 120, 121, 3600] { histogram.observe(value) }
        #expect(histogram.bucketCounts == [3, 2, 2, 3, 2])
        #expect(histogram.cumulativeCounts == [3, 5, 7, 10])
        #expect(histogram.count == 12)
        #expect(histogram.sum == 4201)
    }

    @Test func boundsAreSortedDeduplicatedAndFinite() {
        let histogram = Histogram(upperBounds: [5, 1, 2.5, 1, .infinity, .nan, -.infinity, 2.5])
        #expect(histogram.upperBounds == [1, 2.5, 5])
        #expect(histogram.bucketCounts == [0, 0, 0, 0])
        #expect(Histogram(upperBounds: []).bucketCounts == [0])
    }

    @Test func unsortedBoundsStillBucketCorrectly() {
        var histogram = Histogram(upperBounds: [60, 15, 30])
        histogram.observe(20)
        histogram.observe(15)
        #expect(histogram.upperBounds == [15, 30, 60])
        #expect(histogram.cumulativeCounts == [1, 2, 2])
    }

    @Test func mergeAddsEverything() {
        var first = Histogram(upperBounds: [1, 10])
        first.observe(0.5)
        first.observe(20)
        var second = Histogram(upperBounds: [10, 1])
        second.observe(5)
        second.observe(1)
        second.observe(0.25)
        first.merge(second)
        #expect(first.bucketCounts == [3, 1, 1])
        #expect(first.cumulativeCounts == [3, 4])
        #expect(first.count == 5)
        #expect(first.sum == 26.75)

        var empty = Histogram(upperBounds: [1, 10])
        empty.merge(first)
        #expect(empty == first)
    }

    @Test func mergeWithDifferentBoundsStops() async {
        await #expect(processExitsWith: .failure) {
            var first = Histogram(upperBounds: [1])
            first.merge(Histogram(upperBounds: [2]))
        }
    }
}
