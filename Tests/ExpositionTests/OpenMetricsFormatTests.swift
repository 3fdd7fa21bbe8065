import Exposition
import Testing

@Suite("OpenMetrics format")
struct OpenMetricsFormatTests {
    @Test func counterDropsTotalFromTheFamilyAndWritesCreated() {
        let families = [
            MetricFamily(
                name: "prefect_exporter_polls_total", help: "Polls by result.", type: .counter,
                metrics: [
                    Metric(labels: [Label("result", "success")], value: 42, created: 1_795_423_860),
                    Metric(labels: [Label("result", "failure")], value: 0, created: 1_795_423_860.25),
                ])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP prefect_exporter_polls Polls by result.
                # TYPE prefect_exporter_polls counter
                prefect_exporter_polls_total{result="success"} 42
                prefect_exporter_polls_created{result="success"} 1795423860
                prefect_exporter_polls_total{result="failure"} 0
                prefect_exporter_polls_created{result="failure"} 1795423860.25
                # EOF

                """)
    }

    @Test func exemplarsFollowTheirBucketAndTextFormatLeavesThemOut() {
        var histogram = Histogram(upperBounds: [10, 60])
        histogram.observe(5)
        histogram.observe(42.5, exemplar: [Label("flow_run_id", "e1824c22"), Label("flow_run_name", "thankful-eel")], at: 1_795_423_920.5)
        histogram.observe(600, exemplar: [Label("flow_run_id", "b1e284bf"), Label("flow_run_name", String(repeating: "x", count: 200))])
        let families = [MetricFamily(name: "lateness_seconds", help: "Lateness.", type: .histogram, metrics: [Metric(histogram: histogram)])]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP lateness_seconds Lateness.
                # TYPE lateness_seconds histogram
                # UNIT lateness_seconds seconds
                lateness_seconds_bucket{le="10"} 1
                lateness_seconds_bucket{le="60"} 2 # {flow_run_id="e1824c22",flow_run_name="thankful-eel"} 42.5 1795423920.5
                lateness_seconds_bucket{le="+Inf"} 3 # {flow_run_id="b1e284bf"} 600
                lateness_seconds_count 3
                lateness_seconds_sum 647.5
                # EOF

                """)
        #expect(!TextFormat.encode(families).contains("#  {"))
        #expect(!TextFormat.encode(families).contains("flow_run_id"))
    }

    @Test func createdTimesBeyondMillisecondPrecisionAreWrittenAsTheyAre() {
        // Found by Fuzz/ExpositionFuzz: from 2^53 ms on, rounding to milliseconds overflowed Int64 and crashed.
        let families = [
            MetricFamily(name: "a_total", help: "A.", type: .counter, metrics: [Metric(value: 1, created: 1.2345678912345e19)])
        ]
        #expect(OpenMetricsFormat.encode(families).contains("a_created 1.2345678912345e+19\n"))
    }

    @Test func counterWithoutCreatedHasOnlyTotal() {
        let families = [MetricFamily(name: "requests_total", help: "Requests.", type: .counter, metrics: [Metric(value: 3)])]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP requests Requests.
                # TYPE requests counter
                requests_total 3
                # EOF

                """)
    }

    @Test func counterWithAUnit() {
        let families = [
            MetricFamily(
                name: "process_cpu_seconds_total", help: "CPU time.", type: .counter, metrics: [Metric(value: 1.5, created: 100)])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP process_cpu_seconds CPU time.
                # TYPE process_cpu_seconds counter
                # UNIT process_cpu_seconds seconds
                process_cpu_seconds_total 1.5
                process_cpu_seconds_created 100
                # EOF

                """)
    }

    @Test func infoGaugesBecomeInfoFamilies() {
        let families = [
            MetricFamily(
                name: "prefect_work_pool_info", help: "Work pools and their type; always 1.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("work_pool", "k8s"), Label("type", "kubernetes")], value: 1),
                    Metric(labels: [Label("work_pool", "local"), Label("type", "process")], value: 1),
                ])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP prefect_work_pool Work pools and their type; always 1.
                # TYPE prefect_work_pool info
                prefect_work_pool_info{work_pool="k8s",type="kubernetes"} 1
                prefect_work_pool_info{work_pool="local",type="process"} 1
                # EOF

                """)
    }

    @Test func anInfoNamedGaugeWithOtherValuesStaysAGauge() {
        let families = [MetricFamily(name: "odd_info", help: "Odd.", type: .gauge, metrics: [Metric(value: 2)])]
        #expect(OpenMetricsFormat.encode(families).contains("# TYPE odd_info gauge\nodd_info 2\n"))
    }

    @Test func oneHotStatusGaugesStayGauges() {
        let families = [
            MetricFamily(
                name: "prefect_work_pool_status", help: "Status.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("work_pool", "a"), Label("status", "READY")], value: 1),
                    Metric(labels: [Label("work_pool", "a"), Label("status", "NOT_READY")], value: 0),
                ])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP prefect_work_pool_status Status.
                # TYPE prefect_work_pool_status gauge
                prefect_work_pool_status{work_pool="a",status="READY"} 1
                prefect_work_pool_status{work_pool="a",status="NOT_READY"} 0
                # EOF

                """)
    }

    @Test func gaugesWithUnits() {
        let families = [
            MetricFamily(
                name: "prefect_exporter_last_poll_success_timestamp_seconds", help: "Last success.", type: .gauge,
                metrics: [Metric(value: 1_795_423_920.5)]),
            MetricFamily(name: "process_resident_memory_bytes", help: "RSS.", type: .gauge, metrics: [Metric(value: 1024)]),
            MetricFamily(name: "prefect_up", help: "Up.", type: .gauge, metrics: [Metric(value: 1)]),
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP prefect_exporter_last_poll_success_timestamp_seconds Last success.
                # TYPE prefect_exporter_last_poll_success_timestamp_seconds gauge
                # UNIT prefect_exporter_last_poll_success_timestamp_seconds seconds
                prefect_exporter_last_poll_success_timestamp_seconds 1795423920.5
                # HELP process_resident_memory_bytes RSS.
                # TYPE process_resident_memory_bytes gauge
                # UNIT process_resident_memory_bytes bytes
                process_resident_memory_bytes 1024
                # HELP prefect_up Up.
                # TYPE prefect_up gauge
                prefect_up 1
                # EOF

                """)
    }

    @Test func histogramWithCreated() {
        var histogram = Histogram(upperBounds: [1, 2.5])
        for value in [0.5, 2, 10] { histogram.observe(value) }
        let families = [
            MetricFamily(
                name: "prefect_flow_run_duration_seconds", help: "Run time.", type: .histogram,
                metrics: [Metric(labels: [Label("work_pool", "p")], histogram: histogram, created: 1_795_423_860)])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP prefect_flow_run_duration_seconds Run time.
                # TYPE prefect_flow_run_duration_seconds histogram
                # UNIT prefect_flow_run_duration_seconds seconds
                prefect_flow_run_duration_seconds_bucket{work_pool="p",le="1"} 1
                prefect_flow_run_duration_seconds_bucket{work_pool="p",le="2.5"} 2
                prefect_flow_run_duration_seconds_bucket{work_pool="p",le="+Inf"} 3
                prefect_flow_run_duration_seconds_count{work_pool="p"} 3
                prefect_flow_run_duration_seconds_sum{work_pool="p"} 12.5
                prefect_flow_run_duration_seconds_created{work_pool="p"} 1795423860
                # EOF

                """)
    }

    @Test func helpAndLabelValuesEscapeQuotesBackslashesAndNewlines() {
        let families = [
            MetricFamily(
                name: "x", help: "Say \"hi\"\\now\nplease.", type: .gauge,
                metrics: [Metric(labels: [Label("name", "a\"b\\c\nd")], value: 1)])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP x Say \\"hi\\"\\\\now\\nplease.
                # TYPE x gauge
                x{name="a\\"b\\\\c\\nd"} 1
                # EOF

                """)
    }

    @Test func emptyFamiliesAreSkippedAndEmptyOutputIsJustEOF() {
        #expect(OpenMetricsFormat.encode([MetricFamily(name: "nothing_total", help: "N.", type: .counter)]) == "# EOF\n")
        #expect(OpenMetricsFormat.encode([]) == "# EOF\n")
    }

    @Test func specialValues() {
        let families = [
            MetricFamily(
                name: "g", help: "G.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("v", "nan")], value: .nan), Metric(labels: [Label("v", "inf")], value: .infinity),
                    Metric(labels: [Label("v", "-inf")], value: -.infinity), Metric(labels: [Label("v", "big")], value: 1e20),
                ])
        ]
        #expect(
            OpenMetricsFormat.encode(families) == """
                # HELP g G.
                # TYPE g gauge
                g{v="nan"} NaN
                g{v="inf"} +Inf
                g{v="-inf"} -Inf
                g{v="big"} 1e+20
                # EOF

                """)
    }

    @Test func textFormatIgnoresCreated() {
        let families = [MetricFamily(name: "a_total", help: "A.", type: .counter, metrics: [Metric(value: 1, created: 5)])]
        #expect(TextFormat.encode(families) == "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n")
    }

    @Test func contentType() {
        #expect(OpenMetricsFormat.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    }
}
