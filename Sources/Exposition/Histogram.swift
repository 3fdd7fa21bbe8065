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
    /// One exemplar per bucket (the last observation given one), the last element for `+Inf`;
    /// empty until an observation brings one. Only OpenMetrics writes them.
    public private(set) var exemplars: [Exemplar?] = []

    /// Creates an empty histogram. Bounds are sorted and deduplicated; `+Inf` and NaN are dropped.
    public init(upperBounds: [Double]) {
        let cleaned = Array(Set(upperBounds.filter { $0.isFinite })).sorted()
        self.upperBounds = cleaned
        self.bucketCounts = Array(repeating: 0, count: cleaned.count + 1)
        self.sum = 0
        self.count = 0
    }

    /// Records one value. It lands in the first bucket whose bound is at least the value.
    /// - Parameter exemplar: the labels that identify this observation (a flow run), kept as its
    ///   bucket's exemplar in place of any earlier one.
    public mutating func observe(_ value: Double, exemplar: [Label]? = nil, at timestamp: Double? = nil) {
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
        if let exemplar {
            if exemplars.isEmpty { exemplars = Array(repeating: nil, count: bucketCounts.count) }
            exemplars[low] = Exemplar(labels: exemplar, value: value, timestamp: timestamp)
        }
    }

    /// Takes the exemplars of another histogram with the same bounds, counting nothing.
    public mutating func adopt(exemplarsOf other: Histogram) {
        guard other.upperBounds == upperBounds, !other.exemplars.isEmpty else { return }
        if exemplars.isEmpty { exemplars = Array(repeating: nil, count: bucketCounts.count) }
        for index in other.exemplars.indices where other.exemplars[index] != nil { exemplars[index] = other.exemplars[index] }
    }

    /// Adds every observation of another histogram with the same bounds.
    public mutating func merge(_ other: Histogram) {
        precondition(other.upperBounds == upperBounds, "histograms with different bounds cannot merge")
        for index in bucketCounts.indices { bucketCounts[index] += other.bucketCounts[index] }
        if !other.exemplars.isEmpty {
            if exemplars.isEmpty { exemplars = other.exemplars }
            for index in other.exemplars.indices where other.exemplars[index] != nil { exemplars[index] = other.exemplars[index] }
        }
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

/// An OpenMetrics exemplar: the labels of one observation (a flow run), its value and when it was made.
public struct Exemplar: Sendable, Equatable {
    public var labels: [Label]
    public var value: Double
    /// Seconds since the epoch.
    public var timestamp: Double?

    public init(labels: [Label], value: Double, timestamp: Double? = nil) {
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
    }

    /// OpenMetrics allows at most 128 UTF-8 characters in an exemplar's label names and values together.
    public static let maxLabelCharacters = 128

    /// The labels, dropping trailing ones that would make the exemplar too long.
    static func fitting(_ labels: [Label]) -> [Label] {
        var kept: [Label] = []
        var length = 0
        for label in labels {
            length += label.name.utf8.count + label.value.utf8.count
            guard length <= maxLabelCharacters else { break }
            kept.append(label)
        }
        return kept
    }
}
