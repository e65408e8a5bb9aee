// SVGChart output checked structurally: parsed as XML, then elements counted and texts compared.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import LadonEval

/// A parsed XML element.
final class SVGElement {
    let name: String
    let attributes: [String: String]
    var children: [SVGElement] = []
    var text = ""
    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
    }

    /// Every element below this one (depth first) named `name`, optionally with `class` = `className`.
    func all(_ name: String, class className: String? = nil) -> [SVGElement] {
        children.flatMap { child in
            (child.name == name && (className == nil || child.attributes["class"] == className) ? [child] : []) + child.all(name, class: className)
        }
    }

    /// Parses a document; nil if it is not well-formed XML.
    static func parse(_ text: String) -> SVGElement? {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = builder
        return parser.parse() ? builder.root : nil
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var root: SVGElement?
        var stack: [SVGElement] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            let node = SVGElement(name: name, attributes: attributes)
            if let parent = stack.last { parent.children.append(node) } else { root = node }
            stack.append(node)
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last?.text += string }
    }
}

@Suite struct SVGChartTests {
    static let awkward = "β = 1.28 <paper> & \"logs\" 'q'"

    static func chart() -> SVGChart {
        let curve = [1e3, 1e4, 1e5, 1e6].map { SVGChart.Point(x: $0, y: 1e6 / $0 + 0.1) }
        return SVGChart(
            title: "Rate & accuracy <test>",
            x: .init(title: "Data size [KB]", scale: .log10, tickLabel: { String(format: "%g", $0) }),
            y: .init(title: "Accuracy [%]"),
            series: [
                .lineAndMarkers("Swift", curve),
                .init(label: Self.awkward, markers: [.init(x: 2e3, y: 50, label: "β = 1.28"), .init(x: 3e4, y: 40)],
                      color: "black", shape: .diamond),
                .init(label: "line only", line: [.init(x: 5e3, y: 5), .init(x: -1, y: 1), .init(x: 5e5, y: 5)], dashed: true),
            ],
            guides: [.init(x: 2e4, label: "crossover < 20 kbps")])
    }

    @Test func documentIsWellFormedSVGWithOneGroupPerSeries() throws {
        let root = try #require(SVGElement.parse(Self.chart().render()), "not well-formed XML")
        #expect(root.name == "svg" && root.attributes["xmlns"] == "http://www.w3.org/2000/svg")
        #expect(root.children.first { $0.name == "title" }?.text == "Rate & accuracy <test>")
        let series = root.all("g", class: "series")
        #expect(series.count == 3)
        // One polyline per line series, none for the scatter series.
        #expect(series.map { $0.all("polyline").count } == [1, 0, 1])
        #expect(series[0].all("circle").count == 4)
        #expect(series[1].all("polygon").count == 2 && series[1].all("polygon")[0].attributes["fill"] == "black")
        #expect(series[1].all("text", class: "point-label").map(\.text) == ["β = 1.28"])
        // A negative x cannot be placed on a log axis: the line keeps the other two points.
        let line = try #require(series[2].all("polyline").first)
        #expect(line.attributes["points"]?.split(separator: " ").count == 2)
        #expect(line.attributes["stroke-dasharray"] != nil)
    }

    @Test func legendAndLabelsAreEscapedText() throws {
        let svg = Self.chart().render()
        #expect(svg.contains("&lt;paper&gt; &amp; &quot;logs&quot; &apos;q&apos;"))
        let root = try #require(SVGElement.parse(svg))
        let legend = root.all("g", class: "legend-item").compactMap { $0.all("text").first?.text }
        #expect(legend == ["Swift", Self.awkward, "line only"])
        #expect(root.all("g", class: "series").map { $0.attributes["data-label"] } == ["Swift", Self.awkward, "line only"])
        let axisTitles = root.all("text", class: "axis-title").map(\.text)
        #expect(axisTitles == ["Data size [KB]", "Accuracy [%]"])
        #expect(root.all("text", class: "guide").map(\.text) == ["crossover < 20 kbps"])
    }

    @Test func logAxisTicksAreDecadesAndLinearTicksOneTwoFive() throws {
        let root = try #require(SVGElement.parse(Self.chart().render()))
        let ticks = root.all("text", class: "tick").map(\.text)
        // x: the data spans 1e3 … 1e6, so the decades 1000 … 1e+06; y: 0 … 1000.1 in steps of 200.
        #expect(Array(ticks.prefix(4)) == ["1000", "10000", "100000", "1e+06"])
        #expect(Array(ticks.dropFirst(4)) == ["0", "200", "400", "600", "800", "1000", "1200"])
        // Within two decades, 2 and 5 are added between the powers of ten.
        #expect(SVGChart.ticks(.log10, in: 10...1000) == [10, 20, 50, 100, 200, 500, 1000])
        let linear = SVGChart.ticks(.linear, in: 0...1)
        #expect(linear.count == 6 && zip(linear, [0, 0.2, 0.4, 0.6, 0.8, 1.0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(SVGChart.ticks(.linear, in: -3...7) == [-2, 0, 2, 4, 6])
    }

    @Test func emptyChartStillRenders() throws {
        let empty = SVGChart(title: "nothing", x: .init(title: "x"), y: .init(title: "y", scale: .log10))
        let root = try #require(SVGElement.parse(empty.render()))
        #expect(root.all("g", class: "series").isEmpty && root.all("g", class: "legend-item").isEmpty)
    }
}
