import LadonTestSupport
import Testing
@testable import LadonEval

@Suite struct EvalTaskTests {
    @Test func metricNamesMatchTheDocumentedSchema() {
        #expect(EvalTask.coco.metricNames.count == 12)
        for task in EvalTask.allCases { #expect(task.metricNames.contains(task.headlineMetric)) }
    }

    @Test func benchmarksRunWhenAFilterNamesThem() {
        #expect(PerfGate.filters(["x", "--filter", "Perf", "--skip", "A", "--filter=GEMMPerf"]) == ["Perf", "GEMMPerf"])
        #expect(PerfGate.filters(["x", "--skip", "Perf"]).isEmpty)
    }
}
