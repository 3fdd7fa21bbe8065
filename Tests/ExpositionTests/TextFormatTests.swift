import Exposition
import Testing

@Suite("Text format")
struct TextFormatTests {
    @Test func counterWithoutLabels() {
        let families = [MetricFamily(name: "requests_total", help: "Total requests.", type: .counter, metrics: [Metric(value: 42)])]
        #expect(
            TextFormat.encode(families) == """
                # HELP requests_total Total requests.
                # TYPE requests_total counter
                requests_total 42

                """)
    }

    @Test func gaugeWithLabelsKeepsLabelOrder() {
        let families = [
            MetricFamily(
                name: "prefect_flow_runs", help: "Runs due or in flight.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("work_pool", "default"), Label("state_type", "RUNNING")], value: 3),
                    Metric(labels: [Label("work_pool", "default"), Label("state_type", "PENDING")], value: 0.5),
                    Metric(labels: [Label("work_pool", ""), Label("state_type", "RUNNING")], value: 0),
                ])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP prefect_flow_runs Runs due or in flight.
                # TYPE prefect_flow_runs gauge
                prefect_flow_runs{work_pool="default",state_type="RUNNING"} 3
                prefect_flow_runs{work_pool="default",state_type="PENDING"} 0.5
                prefect_flow_runs{work_pool="",state_type="RUNNING"} 0

                """)
    }

    @Test func severalFamiliesInTheOrderGiven() {
        let families = [
            MetricFamily(name: "b_metric", help: "B.", type: .gauge, metrics: [Metric(value: 2)]),
            MetricFamily(name: "a_metric_total", help: "A.", type: .counter, metrics: [Metric(value: 1)]),
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP b_metric B.
                # TYPE b_metric gauge
                b_metric 2
                # HELP a_metric_total A.
                # TYPE a_metric_total counter
                a_metric_total 1

                """)
    }

    @Test func histogramWithLabels() {
        var histogram = Histogram(upperBounds: [1, 2.5, 5])
        for value in [0.5, 1, 2.5, 3, 10] { histogram.observe(value) }
        let families = [
            MetricFamily(
                name: "prefect_flow_run_lateness_seconds", help: "How late each late run is.", type: .histogram,
                metrics: [Metric(labels: [Label("work_pool", "a"), Label("work_queue", "default")], histogram: histogram)])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP prefect_flow_run_lateness_seconds How late each late run is.
                # TYPE prefect_flow_run_lateness_seconds histogram
                prefect_flow_run_lateness_seconds_bucket{work_pool="a",work_queue="default",le="1"} 2
                prefect_flow_run_lateness_seconds_bucket{work_pool="a",work_queue="default",le="2.5"} 3
                prefect_flow_run_lateness_seconds_bucket{work_pool="a",work_queue="default",le="5"} 4
                prefect_flow_run_lateness_seconds_bucket{work_pool="a",work_queue="default",le="+Inf"} 5
                prefect_flow_run_lateness_seconds_sum{work_pool="a",work_queue="default"} 17
                prefect_flow_run_lateness_seconds_count{work_pool="a",work_queue="default"} 5

                """)
    }

    @Test func histogramWithoutLabelsAndWithoutObservations() {
        let families = [
            MetricFamily(
                name: "duration_seconds", help: "Durations.", type: .histogram,
                metrics: [Metric(histogram: Histogram(upperBounds: [0.1, 1]))])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP duration_seconds Durations.
                # TYPE duration_seconds histogram
                duration_seconds_bucket{le="0.1"} 0
                duration_seconds_bucket{le="1"} 0
                duration_seconds_bucket{le="+Inf"} 0
                duration_seconds_sum 0
                duration_seconds_count 0

                """)
    }

    @Test func histogramWithNoFiniteBoundsHasOnlyInf() {
        var histogram = Histogram(upperBounds: [])
        histogram.observe(7.25)
        let families = [MetricFamily(name: "h", help: "H.", type: .histogram, metrics: [Metric(histogram: histogram)])]
        #expect(
            TextFormat.encode(families) == """
                # HELP h H.
                # TYPE h histogram
                h_bucket{le="+Inf"} 1
                h_sum 7.25
                h_count 1

                """)
    }

    @Test func labelValuesAreEscaped() {
        let families = [
            MetricFamily(
                name: "prefect_deployment_info", help: "Deployments.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("deployment", "say \"hi\"/back\\slash\nnew line")], value: 1),
                    Metric(labels: [Label("deployment", "ünïcödé/🚀 ok")], value: 1),
                    Metric(labels: [Label("deployment", "tab\there, single 'quote', {braces}=,")], value: 1),
                ])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP prefect_deployment_info Deployments.
                # TYPE prefect_deployment_info gauge
                prefect_deployment_info{deployment="say \\"hi\\"/back\\\\slash\\nnew line"} 1
                prefect_deployment_info{deployment="ünïcödé/🚀 ok"} 1
                prefect_deployment_info{deployment="tab\there, single 'quote', {braces}=,"} 1

                """)
    }

    @Test func helpIsEscapedButQuotesAreKept() {
        let families = [
            MetricFamily(
                name: "m", help: "First line\nsecond \"line\" with a \\ backslash and ü", type: .gauge,
                metrics: [Metric(value: 1)])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP m First line\\nsecond "line" with a \\\\ backslash and ü
                # TYPE m gauge
                m 1

                """)
    }

    @Test func escapingFunctionsDirectly() {
        #expect(TextFormat.escapeLabelValue(#"a"b\c"#) == #"a\"b\\c"#)
        #expect(TextFormat.escapeLabelValue("a\nb") == #"a\nb"#)
        #expect(TextFormat.escapeLabelValue("plain") == "plain")
        #expect(TextFormat.escapeLabelValue("\\\\") == #"\\\\"#)
        #expect(TextFormat.escapeHelp(#"say "x" \ y"#) == #"say "x" \\ y"#)
        #expect(TextFormat.escapeHelp("a\nb") == #"a\nb"#)
    }

    @Test func emptyFamiliesAreSkipped() {
        let families = [
            MetricFamily(name: "empty_one", help: "Nothing.", type: .gauge),
            MetricFamily(name: "present", help: "Something.", type: .gauge, metrics: [Metric(value: 1)]),
            MetricFamily(name: "empty_two", help: "Nothing.", type: .histogram, metrics: []),
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP present Something.
                # TYPE present gauge
                present 1

                """)
        #expect(TextFormat.encode([]) == "")
        #expect(TextFormat.encode([MetricFamily(name: "x", help: "", type: .counter)]) == "")
    }

    @Test func emptyHelpStillWritesTheLine() {
        let families = [MetricFamily(name: "x", help: "", type: .gauge, metrics: [Metric(value: 1)])]
        #expect(TextFormat.encode(families) == "# HELP x \n# TYPE x gauge\nx 1\n")
    }

    @Test(arguments: [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-3.0, "-3"),
        (42.0, "42"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (-2.75, "-2.75"),
        (1.0 / 3.0, "0.3333333333333333"),
        (1_700_000_000.0, "1700000000"),
        (1_700_000_000.123, "1700000000.123"),
        (999_999_999_999_999.0, "999999999999999"),
        (1e15, "1000000000000000"),
        (-1e15, "-1000000000000000"),
        (9_007_199_254_740_991.0, "9007199254740991"),
        (9_007_199_254_740_992.0, "9007199254740992"),
        (9_999_999_999_999_998.0, "9999999999999998"),
        (1e16, "1e+16"),
        (1e15 + 0.5, "1000000000000000.5"),
        (1.5e300, "1.5e+300"),
        (1e-7, "1e-07"),
        (Double.greatestFiniteMagnitude, "1.7976931348623157e+308"),
        (Double.nan, "NaN"),
        (Double.infinity, "+Inf"),
        (-Double.infinity, "-Inf"),
    ])
    func valueFormatting(value: Double, expected: String) {
        #expect(TextFormat.formatValue(value) == expected)
    }

    @Test func specialValuesInSamples() {
        let families = [
            MetricFamily(
                name: "g", help: "G.", type: .gauge,
                metrics: [
                    Metric(labels: [Label("k", "nan")], value: .nan),
                    Metric(labels: [Label("k", "inf")], value: .infinity),
                    Metric(labels: [Label("k", "-inf")], value: -.infinity),
                    Metric(labels: [Label("k", "big")], value: 1.2345678901234567e19),
                ])
        ]
        #expect(
            TextFormat.encode(families) == """
                # HELP g G.
                # TYPE g gauge
                g{k="nan"} NaN
                g{k="inf"} +Inf
                g{k="-inf"} -Inf
                g{k="big"} 1.2345678901234567e+19

                """)
    }

    @Test func encodeBytesIsUTF8OfEncode() {
        let families = [MetricFamily(name: "x", help: "ü", type: .gauge, metrics: [Metric(labels: [Label("l", "🚀")], value: 1)])]
        #expect(TextFormat.encodeBytes(families) == Array(TextFormat.encode(families).utf8))
        #expect(TextFormat.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }
}
