/// A cumulative latency histogram with fixed bucket bounds, in the shape Prometheus scrapes: the
/// count of observations at or below each bound, the total count and the sum. The daemon records
/// into it under its state lock (one clock read and a short scan per request); `repd metrics`
/// renders it.
public struct LatencyHistogram: Codable, Sendable, Equatable {
    /// Upper bounds of the buckets in microseconds, from 50 µs (a cached read) to 10 s (a disk
    /// that hangs until `disk-timeout`). The implicit last bucket is +Inf.
    public static let boundsMicroseconds: [UInt64] = [
        50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000,
    ]

    /// Observations per bucket (not cumulative), one more than the bounds: the last is +Inf.
    public var buckets: [UInt64]
    public var count: UInt64
    /// The sum of all observations, in nanoseconds.
    public var sumNanoseconds: UInt64

    enum CodingKeys: String, CodingKey {
        case buckets, count
        case sumNanoseconds = "sum-ns"
    }

    public init() {
        buckets = Array(repeating: 0, count: Self.boundsMicroseconds.count + 1)
        count = 0
        sumNanoseconds = 0
    }

    public mutating func record(nanoseconds: UInt64) {
        let micros = nanoseconds / 1_000
        var index = 0
        while index < Self.boundsMicroseconds.count, micros > Self.boundsMicroseconds[index] { index += 1 }
        buckets[index] &+= 1
        count &+= 1
        sumNanoseconds &+= nanoseconds
    }

    /// Observations at or below each bound, then the total (the +Inf bucket).
    public var cumulative: [UInt64] {
        var total: UInt64 = 0
        return buckets.map { total &+= $0; return total }
    }
}

/// repd: how long requests took on this node since `up`.
public struct LatencyStatistics: Codable, Sendable, Equatable {
    /// NBD requests from receipt to reply: reads (and cache requests), writes (write, trim,
    /// write-zeroes) and flushes. What an application sees, the network to the client aside.
    public var read = LatencyHistogram()
    public var write = LatencyHistogram()
    public var flush = LatencyHistogram()
    /// Replicated writes from being queued to the peer until the peer acknowledged them: its
    /// write to disk with protocol C, its receipt with B. Protocol A has no acknowledgement per
    /// write; the histogram stays empty.
    public var replication = LatencyHistogram()

    public init() {}
}
