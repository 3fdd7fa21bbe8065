/// A Prometheus histogram: fixed upper bounds, a count per bucket, a sum and a total count.
///
/// Counts are kept per bucket (not cumulative); ``cumulativeCounts`` gives the
/// running totals that the text format writes on `_bucket` lines. The implicit
/// `+Inf` bucket is ``count``.
public struct Histogram: Sendable, Equatable {
    /// Upper bounds, strictly increasing, without `+Inf`.
    public let upperBounds: [Double]
    /// Observations per bucket; the last element counts values above every bound.
    public private(set) var bucketCounts: [UInt64]
    /// The sum of every observed value.
    public private(set) var sum: Double
    /// How many values were observed.
    public private(set) var count: UInt64

    /// Creates an empty histogram. Bounds are sorted and deduplicated; `+Inf` and NaN are dropped.
    public init(upperBounds: [Double]) {
        let cleaned = Array(Set(upperBounds.filter { $0.isFinite })).sorted()
        self.upperBounds = cleaned
        self.bucketCounts = Array(repeating: 0, count: cleaned.count + 1)
        self.sum = 0
        self.count = 0
    }

    /// Records one value. It lands in the first bucket whose bound is at least the value.
    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        var low = 0
        var high = upperBounds.count
        while low < high {
            let mid = (low + high) / 2
            if value <= upperBounds[mid] { high = mid } else { low = mid + 1 }
        }
        bucketCounts[low] += 1
        sum += value
        count += 1
    }

    /// Adds every observation of another histogram with the same bounds.
    public mutating func merge(_ other: Histogram) {
        precondition(other.upperBounds == upperBounds, "histograms with different bounds cannot merge")
        for index in bucketCounts.indices { bucketCounts[index] += other.bucketCounts[index] }
        sum += other.sum
        count += other.count
    }

    /// Running totals for each finite bound, in order: the values on `_bucket{le="…"}` lines.
    public var cumulativeCounts: [UInt64] {
        var running: UInt64 = 0
        return upperBounds.indices.map { index in
            running += bucketCounts[index]
            return running
        }
    }
}
