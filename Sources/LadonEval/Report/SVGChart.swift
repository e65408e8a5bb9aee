// A small, dependency-free SVG line and scatter chart for the benchmark reports.
import Foundation

/// A line and scatter chart rendered as a standalone SVG document: series of (x, y) points drawn as a line,
/// as markers or both, linear or logarithmic axes with ticks, grid and titles, a legend, and labelled vertical
/// guide lines. All text is XML-escaped.
///
/// ```swift
/// var chart = SVGChart(title: "Latency against bandwidth",
///                      x: .init(title: "Data rate", scale: .log10, tickLabel: { DataRate.format($0) }),
///                      y: .init(title: "Latency [s]"))
/// chart.series.append(.init(label: "split computing", line: curve, markers: measured))
/// chart.guides.append(.init(x: 1.4e6, label: "split < offloading below 1.4 Mbps"))
/// try chart.render().write(toFile: "latency.svg", atomically: true, encoding: .utf8)
/// ```
///
/// Document structure (stable, for tools and tests): the root `<svg>` holds a `<title>`, then `<g class="grid">`,
/// `<g class="axes">` (tick labels are `<text class="tick">`, axis titles `<text class="axis-title">`),
/// `<g class="guides">`, `<g class="plot">` with one `<g class="series">` per series in order (its line is one
/// `<polyline>`, its markers `<circle>`, `<rect>` or `<polygon>` elements, point labels `<text class="point-label">`),
/// and `<g class="legend">` with one `<g class="legend-item">` per series whose `<text>` is the series label.
public struct SVGChart: Sendable {
    /// A data point; `label`, if any, is written next to its marker.
    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public var label: String?
        public init(x: Double, y: Double, label: String? = nil) {
            self.x = x
            self.y = y
            self.label = label
        }
    }

    /// How an axis maps values to positions.
    public enum Scale: Sendable {
        case linear
        /// Logarithmic (base 10); values ≤ 0 cannot be shown and are left out.
        case log10
    }

    /// An axis: title, scale, range and how tick values are written.
    public struct Axis: Sendable {
        public var title: String
        public var scale: Scale
        /// Shown range; nil fits the data (rounded out to whole ticks, or to whole decades on a log axis).
        public var range: ClosedRange<Double>?
        /// Writes a tick value; the default prints up to 4 significant digits (`%.4g`).
        public var tickLabel: @Sendable (Double) -> String

        public init(title: String, scale: Scale = .linear, range: ClosedRange<Double>? = nil,
                    tickLabel: @escaping @Sendable (Double) -> String = { String(format: "%.4g", $0) }) {
            self.title = title
            self.scale = scale
            self.range = range
            self.tickLabel = tickLabel
        }
    }

    /// The symbol drawn at each marker point.
    public enum MarkerShape: Sendable {
        case circle, square, diamond, triangle
    }

    /// One named set of points: a line through `line` (in the given order) and symbols at `markers`.
    public struct Series: Sendable {
        public var label: String
        /// Joined by one polyline in the given order; empty for a scatter series.
        public var line: [Point]
        /// Drawn as symbols; empty for a plain line.
        public var markers: [Point]
        /// Any SVG/CSS color; nil takes the next color of ``SVGChart/palette``.
        public var color: String?
        public var dashed: Bool
        public var shape: MarkerShape

        public init(label: String, line: [Point] = [], markers: [Point] = [], color: String? = nil,
                    dashed: Bool = false, shape: MarkerShape = .circle) {
            self.label = label
            self.line = line
            self.markers = markers
            self.color = color
            self.dashed = dashed
            self.shape = shape
        }

        /// The same points joined by a line and marked.
        public static func lineAndMarkers(_ label: String, _ points: [Point], color: String? = nil,
                                          dashed: Bool = false, shape: MarkerShape = .circle) -> Series {
            Series(label: label, line: points, markers: points, color: color, dashed: dashed, shape: shape)
        }
    }

    /// A labelled vertical line across the plot at `x` (e.g. a crossover).
    public struct Guide: Sendable, Equatable {
        public var x: Double
        public var label: String
        public init(x: Double, label: String) {
            self.x = x
            self.label = label
        }
    }

    /// Series colors, in order (matplotlib's "tab10").
    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                 "#bcbd22", "#17becf"]

    public var title: String
    public var xAxis: Axis
    public var yAxis: Axis
    public var series: [Series] = []
    public var guides: [Guide] = []
    /// Size of the whole document in pixels.
    public var width = 760.0, height = 480.0

    public init(title: String, x: Axis, y: Axis, series: [Series] = [], guides: [Guide] = []) {
        self.title = title
        xAxis = x
        yAxis = y
        self.series = series
        self.guides = guides
    }

    // MARK: Rendering

    /// The chart as an SVG document (UTF-8 text, no external resources).
    public func render() -> String {
        let legendWidth = 36 + 6.5 * Double(series.map(\.label.count).max() ?? 0)
        let plot = (left: 72.0, top: 44.0, right: width - 16 - (series.isEmpty ? 0 : legendWidth + 12), bottom: height - 52)
        let xs = series.flatMap { ($0.line + $0.markers).map(\.x) } + guides.map(\.x)
        let ys = series.flatMap { ($0.line + $0.markers).map(\.y) }
        let x = AxisMapping(axis: xAxis, data: xs, from: plot.left, to: plot.right)
        let y = AxisMapping(axis: yAxis, data: ys, from: plot.bottom, to: plot.top)

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <title>\(Self.escape(title))</title>
            <defs><clipPath id="plot-area"><rect x="\(f(plot.left))" y="\(f(plot.top))" \
            width="\(f(plot.right - plot.left))" height="\(f(plot.bottom - plot.top))"/></clipPath></defs>
            <rect width="100%" height="100%" fill="white"/>
            <text class="chart-title" x="\(f(width / 2))" y="24" text-anchor="middle" font-size="15" \
            font-weight="bold">\(Self.escape(title))</text>

            """

        svg += "<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n"
        for t in x.ticks { svg += "<line x1=\"\(f(x(t)))\" y1=\"\(f(plot.top))\" x2=\"\(f(x(t)))\" y2=\"\(f(plot.bottom))\"/>\n" }
        for t in y.ticks { svg += "<line x1=\"\(f(plot.left))\" y1=\"\(f(y(t)))\" x2=\"\(f(plot.right))\" y2=\"\(f(y(t)))\"/>\n" }
        svg += "</g>\n"

        svg += "<g class=\"axes\">\n"
        svg += "<rect x=\"\(f(plot.left))\" y=\"\(f(plot.top))\" width=\"\(f(plot.right - plot.left))\" height=\"\(f(plot.bottom - plot.top))\" fill=\"none\" stroke=\"#333\"/>\n"
        for t in x.ticks {
            svg += "<line x1=\"\(f(x(t)))\" y1=\"\(f(plot.bottom))\" x2=\"\(f(x(t)))\" y2=\"\(f(plot.bottom + 5))\" stroke=\"#333\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(x(t)))\" y=\"\(f(plot.bottom + 18))\" text-anchor=\"middle\">\(Self.escape(xAxis.tickLabel(t)))</text>\n"
        }
        for t in y.ticks {
            svg += "<line x1=\"\(f(plot.left - 5))\" y1=\"\(f(y(t)))\" x2=\"\(f(plot.left))\" y2=\"\(f(y(t)))\" stroke=\"#333\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(plot.left - 8))\" y=\"\(f(y(t) + 4))\" text-anchor=\"end\">\(Self.escape(yAxis.tickLabel(t)))</text>\n"
        }
        svg += "<text class=\"axis-title\" x=\"\(f((plot.left + plot.right) / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(Self.escape(xAxis.title))</text>\n"
        let yMid = (plot.top + plot.bottom) / 2
        svg += "<text class=\"axis-title\" x=\"16\" y=\"\(f(yMid))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f(yMid)))\">\(Self.escape(yAxis.title))</text>\n"
        svg += "</g>\n"

        svg += "<g class=\"guides\">\n"
        for (i, guide) in guides.enumerated() where x.shows(guide.x) && x.range.contains(guide.x) {
            let gx = x(guide.x)
            svg += "<line x1=\"\(f(gx))\" y1=\"\(f(plot.top))\" x2=\"\(f(gx))\" y2=\"\(f(plot.bottom))\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n"
            // Labels near the right edge go to the left of their line.
            let leftward = gx > (plot.left + plot.right) / 2
            svg += "<text class=\"guide\" x=\"\(f(gx + (leftward ? -4 : 4)))\" y=\"\(f(plot.top + 14 + 14 * Double(i)))\" text-anchor=\"\(leftward ? "end" : "start")\" fill=\"#333\">\(Self.escape(guide.label))</text>\n"
        }
        svg += "</g>\n"

        svg += "<g class=\"plot\" clip-path=\"url(#plot-area)\">\n"
        for (i, s) in series.enumerated() {
            let color = Self.escape(s.color ?? Self.palette[i % Self.palette.count])
            svg += "<g class=\"series\" data-label=\"\(Self.escape(s.label))\">\n"
            let linePoints = s.line.filter { x.shows($0.x) && y.shows($0.y) }
            if !s.line.isEmpty {
                let coordinates = linePoints.map { "\(f(x($0.x))),\(f(y($0.y)))" }.joined(separator: " ")
                svg += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"7 4\"" : "")/>\n"
            }
            for p in s.markers where x.shows(p.x) && y.shows(p.y) {
                svg += Self.marker(s.shape, at: (x(p.x), y(p.y)), color: color) + "\n"
                if let label = p.label {
                    svg += "<text class=\"point-label\" x=\"\(f(x(p.x) + 7))\" y=\"\(f(y(p.y) - 7))\" font-size=\"10\">\(Self.escape(label))</text>\n"
                }
            }
            svg += "</g>\n"
        }
        svg += "</g>\n"

        svg += "<g class=\"legend\">\n"
        for (i, s) in series.enumerated() {
            let color = Self.escape(s.color ?? Self.palette[i % Self.palette.count])
            let ly = plot.top + 8 + 20 * Double(i), lx = plot.right + 12
            svg += "<g class=\"legend-item\">"
            if !s.line.isEmpty {
                svg += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 24))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"7 4\"" : "")/>"
            }
            if !s.markers.isEmpty { svg += Self.marker(s.shape, at: (lx + 12, ly), color: color) }
            svg += "<text x=\"\(f(lx + 30))\" y=\"\(f(ly + 4))\">\(Self.escape(s.label))</text></g>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }

    /// Escapes `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Tick values for a range: 1–2–5 steps on a linear axis, powers of ten on a log axis (with 2 and 5 between
    /// them when the range spans at most two decades).
    public static func ticks(_ scale: Scale, in range: ClosedRange<Double>) -> [Double] {
        switch scale {
        case .linear:
            let step = niceStep((range.upperBound - range.lowerBound) / 6)
            guard step > 0, step.isFinite else { return [range.lowerBound] }
            var ticks: [Double] = []
            var k = (range.lowerBound / step).rounded(.up)
            while k * step <= range.upperBound + step * 1e-9, ticks.count < 100 {
                ticks.append(abs(k * step) < step * 1e-9 ? 0 : k * step)
                k += 1
            }
            return ticks
        case .log10:
            let low = Foundation.log10(range.lowerBound), high = Foundation.log10(range.upperBound)
            let multiples: [Double] = high - low <= 2 ? [1, 2, 5] : [1]
            var ticks: [Double] = []
            for decade in Int(low.rounded(.down))...Int(high.rounded(.up)) {
                for m in multiples {
                    let value = m * Foundation.pow(10, Double(decade))
                    if value >= range.lowerBound * (1 - 1e-9) && value <= range.upperBound * (1 + 1e-9) { ticks.append(value) }
                }
            }
            return ticks
        }
    }

    /// The smallest of 1, 2, 5 × 10ᵏ at least `rough`.
    static func niceStep(_ rough: Double) -> Double {
        guard rough > 0, rough.isFinite else { return 0 }
        let magnitude = Foundation.pow(10, Foundation.log10(rough).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * magnitude >= rough * (1 - 1e-12) { return m * magnitude }
        return 10 * magnitude
    }

    private static func marker(_ shape: MarkerShape, at p: (x: Double, y: Double), color: String) -> String {
        let r = 4.0
        switch shape {
        case .circle:
            return "<circle cx=\"\(f(p.x))\" cy=\"\(f(p.y))\" r=\"\(f(r))\" fill=\"\(color)\"/>"
        case .square:
            return "<rect x=\"\(f(p.x - r))\" y=\"\(f(p.y - r))\" width=\"\(f(2 * r))\" height=\"\(f(2 * r))\" fill=\"\(color)\"/>"
        case .diamond:
            let q = r * 1.3
            return "<polygon points=\"\(f(p.x)),\(f(p.y - q)) \(f(p.x + q)),\(f(p.y)) \(f(p.x)),\(f(p.y + q)) \(f(p.x - q)),\(f(p.y))\" fill=\"\(color)\"/>"
        case .triangle:
            let q = r * 1.3
            return "<polygon points=\"\(f(p.x)),\(f(p.y - q)) \(f(p.x + q)),\(f(p.y + q * 0.8)) \(f(p.x - q)),\(f(p.y + q * 0.8))\" fill=\"\(color)\"/>"
        }
    }
}

/// Maps one axis's values to pixel positions.
private struct AxisMapping {
    let scale: SVGChart.Scale
    let range: ClosedRange<Double>
    let ticks: [Double]
    let from: Double, to: Double

    init(axis: SVGChart.Axis, data: [Double], from: Double, to: Double) {
        scale = axis.scale
        self.from = from
        self.to = to
        let usable = data.filter { $0.isFinite && (axis.scale == .linear || $0 > 0) }
        if let fixed = axis.range, fixed.upperBound > fixed.lowerBound, axis.scale == .linear || fixed.lowerBound > 0 {
            range = fixed
        } else {
            range = Self.fit(usable, axis.scale)
        }
        ticks = SVGChart.ticks(scale, in: range)
    }

    /// The data range rounded out to whole ticks (linear) or decades (log).
    private static func fit(_ values: [Double], _ scale: SVGChart.Scale) -> ClosedRange<Double> {
        guard var low = values.min(), var high = values.max() else { return scale == .linear ? 0...1 : 1...10 }
        switch scale {
        case .linear:
            if low == high { low -= max(abs(low) * 0.1, 1); high += max(abs(high) * 0.1, 1) }
            let step = SVGChart.niceStep((high - low) / 6)
            return (low / step).rounded(.down) * step...(high / step).rounded(.up) * step
        case .log10:
            var a = log10(low).rounded(.down), b = log10(high).rounded(.up)
            if a == b { a -= 1; b += 1 }
            return pow(10, a)...pow(10, b)
        }
    }

    private func position(_ v: Double) -> Double { scale == .linear ? v : log10(v) }

    /// Whether `v` can be placed on this axis (finite, and above zero on a log axis).
    func shows(_ v: Double) -> Bool { v.isFinite && (scale == .linear || v > 0) }

    func callAsFunction(_ v: Double) -> Double {
        let a = position(range.lowerBound), b = position(range.upperBound)
        return from + (position(v) - a) / (b - a) * (to - from)
    }
}

/// A coordinate with two decimals.
private func f(_ v: Double) -> String { String(format: "%.2f", v) }
