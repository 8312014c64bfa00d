import ControlProtocol
import XCTest

/// `repd metrics`: the latency histogram and the Prometheus text rendering.
final class MetricsTests: XCTestCase {
    func testHistogramPutsEachObservationInTheFirstBucketThatHoldsIt() {
        var h = LatencyHistogram()
        h.record(nanoseconds: 10_000)          // 10 µs: the 50 µs bucket
        h.record(nanoseconds: 50_000)          // exactly on a bound: that bucket (le is "at or below")
        h.record(nanoseconds: 50_001_000)      // 50.001 ms: the 100 ms bucket
        h.record(nanoseconds: 60_000_000_000)  // a minute: +Inf
        XCTAssertEqual(h.count, 4)
        XCTAssertEqual(h.sumNanoseconds, 10_000 + 50_000 + 50_001_000 + 60_000_000_000)
        let bounds = LatencyHistogram.boundsMicroseconds
        XCTAssertEqual(h.buckets[0], 2)
        XCTAssertEqual(h.buckets[bounds.firstIndex(of: 100_000)!], 1)
        XCTAssertEqual(h.buckets.last, 1)
        XCTAssertEqual(h.cumulative.last, 4)
        XCTAssertEqual(h.cumulative, h.cumulative.sorted(), "cumulative counts never decrease")
    }

    func testRendersStateSetsCountersInBytesAndHistograms() {
        var status = Fixture.syncSource
        var latency = LatencyStatistics()
        latency.write.record(nanoseconds: 200_000)
        latency.write.record(nanoseconds: 3_000_000)
        latency.replication.record(nanoseconds: 150_000)
        status.latency = latency
        let text = PrometheusText.render([status])
        let lines = Set(text.split(separator: "\n").map(String.init))

        for expected in [
            "# TYPE repd_disk_state gauge",
            #"repd_disk_state{resource="r0",state="UpToDate"} 1"#,
            #"repd_disk_state{resource="r0",state="Inconsistent"} 0"#,
            #"repd_role{resource="r0",state="Primary"} 1"#,
            #"repd_replication_state{resource="r0",peer="beta",state="SyncSource"} 1"#,
            #"repd_peer_disk_state{resource="r0",peer="beta",state="Inconsistent"} 1"#,
            #"repd_connection_state{resource="r0",peer="beta",state="Connected"} 1"#,
            // KiB in the status, bytes in the metrics.
            #"repd_out_of_sync_bytes{resource="r0",peer="beta"} \#(Fixture.leftKiB * 1024)"#,
            #"repd_written_bytes_total{resource="r0"} \#(2048 * 1024)"#,
            "# TYPE repd_peer_sent_bytes_total counter",
            #"repd_resync_running{resource="r0",peer="beta"} 1"#,
            // 24,300 KiB in 10 s.
            #"repd_resync_rate_bytes_per_second{resource="r0",peer="beta"} \#(2_430 * 1024)"#,
            "# TYPE repd_request_duration_seconds histogram",
            #"repd_request_duration_seconds_bucket{resource="r0",op="write",le="0.00025"} 1"#,
            #"repd_request_duration_seconds_bucket{resource="r0",op="write",le="0.0025"} 1"#,
            #"repd_request_duration_seconds_bucket{resource="r0",op="write",le="0.005"} 2"#,
            #"repd_request_duration_seconds_bucket{resource="r0",op="write",le="+Inf"} 2"#,
            #"repd_request_duration_seconds_count{resource="r0",op="write"} 2"#,
            #"repd_request_duration_seconds_sum{resource="r0",op="write"} 0.0032"#,
            #"repd_replication_duration_seconds_count{resource="r0",peer="beta"} 1"#,
        ] {
            XCTAssertTrue(lines.contains(expected), "missing: \(expected)\n\(text)")
        }
        // Each family is announced once, before its samples.
        let types = lines.filter { $0.hasPrefix("# TYPE ") }.count
        XCTAssertEqual(types, text.components(separatedBy: "# TYPE ").count - 1)
    }

    func testEscapesLabelValues() {
        var status = Fixture.connectedPrimary
        status.devices[0].backingDisk = "/dev/odd\"name\\with\nnewline"
        let text = PrometheusText.render([status])
        XCTAssertTrue(text.contains(#"backing_disk="/dev/odd\"name\\with\nnewline""#), text)
    }

    func testNoResourcesGivesOnlyTheFamilies() {
        let text = PrometheusText.render([])
        XCTAssertFalse(text.split(separator: "\n").contains { !$0.hasPrefix("#") }, text)
    }
}
