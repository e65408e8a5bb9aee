// End-to-end latency against link rate for local computing, full offloading and split computing.

/// Which heads an inference needs, and so which head times count in the latency model.
public enum BenchTasks: String, Sendable, Codable, CaseIterable {
    /// All three heads, as the model serves them together (the default).
    case all
    case classification, detection, segmentation

    public var countsClassification: Bool { self == .all || self == .classification }
    public var countsDetection: Bool { self == .all || self == .detection }
    public var countsSegmentation: Bool { self == .all || self == .segmentation }
}

/// Where the model runs.
public enum LatencyScenario: String, Sendable, Codable, CaseIterable {
    /// The whole model on the device; nothing is sent.
    case local
    /// The device sends a JPEG of the image; the server runs the whole model.
    case offloading
    /// The device runs preprocessing, the encoder and the entropy coder and sends the packet; the server the rest.
    case split

    /// The name in tables and charts.
    public var title: String {
        switch self {
        case .local: "local computing"
        case .offloading: "full offloading"
        case .split: "split computing"
        }
    }
}

/// The stage times (seconds, medians measured on one machine) and sizes (bytes) the latency model works from.
public struct StageProfile: Sendable, Equatable, Codable {
    /// 8-bit RGB → tensor, normalisation, resize and padding (GeneralizedRCNNTransform).
    public var preprocess: Double
    public var encoder: Double
    /// Quantisation and rANS coding of the latent.
    public var entropyEncode: Double
    /// JPEG encoding of the original image, for full offloading.
    public var jpegEncode: Double
    public var jpegDecode: Double
    public var entropyDecode: Double
    public var decoderBody: Double
    public var classificationHead: Double
    public var detectionHead: Double
    public var segmentationHead: Double
    /// The whole packet the device sends in split computing (header, CompressAI's bytes, CRC).
    public var packetBytes: Double
    /// The JPEG the device sends in full offloading.
    public var jpegBytes: Double

    public init(preprocess: Double, encoder: Double, entropyEncode: Double, jpegEncode: Double, jpegDecode: Double,
                entropyDecode: Double, decoderBody: Double, classificationHead: Double, detectionHead: Double,
                segmentationHead: Double, packetBytes: Double, jpegBytes: Double) {
        self.preprocess = preprocess; self.encoder = encoder; self.entropyEncode = entropyEncode
        self.jpegEncode = jpegEncode; self.jpegDecode = jpegDecode; self.entropyDecode = entropyDecode
        self.decoderBody = decoderBody; self.classificationHead = classificationHead
        self.detectionHead = detectionHead; self.segmentationHead = segmentationHead
        self.packetBytes = packetBytes; self.jpegBytes = jpegBytes
    }

    /// The time of the heads that `tasks` needs.
    public func heads(_ tasks: BenchTasks) -> Double {
        (tasks.countsClassification ? classificationHead : 0) + (tasks.countsDetection ? detectionHead : 0)
            + (tasks.countsSegmentation ? segmentationHead : 0)
    }
}

/// One scenario's end-to-end latency at one rate, split into its parts (seconds).
public struct LatencyBreakdown: Sendable, Equatable, Codable {
    /// Computation on the device, after the slowdown.
    public var device: Double
    /// Sending the request (JPEG or packet) and the response at the link rate.
    public var transfer: Double
    /// The fixed round-trip time (once per request; zero for local computing).
    public var roundTrip: Double
    /// Computation on the server.
    public var server: Double
    /// Bytes over the link: request plus counted response.
    public var bytes: Double

    public var total: Double { device + transfer + roundTrip + server }
}

/// The rates at which one scenario is faster than another (strictly; equal latency is not a win).
public enum Crossover: Sendable, Equatable {
    /// Faster at every rate.
    case always
    /// Faster at no rate.
    case never
    /// Faster at rates below this one.
    case below(DataRate)
    /// Faster at rates above this one.
    case above(DataRate)

    /// Whether the scenario wins at `rate`, read off the crossover.
    public func wins(at rate: DataRate) -> Bool {
        switch self {
        case .always: true
        case .never: false
        case .below(let r): rate < r
        case .above(let r): rate > r
        }
    }
}

/// A device's power draw, from the user, for a first-order energy model: E = P · t.
public struct PowerModel: Sendable, Equatable, Codable {
    /// Watts while the device computes.
    public var deviceWatts: Double
    /// Watts while the radio sends or receives.
    public var radioWatts: Double

    public init(deviceWatts: Double, radioWatts: Double) {
        self.deviceWatts = deviceWatts
        self.radioWatts = radioWatts
    }

    /// Device energy in joules: device power × device compute time + radio power × transfer time. Waiting for
    /// the server and the round trip are not counted (an idle device is taken to draw nothing extra).
    public func deviceJoules(_ b: LatencyBreakdown) -> Double { deviceWatts * b.device + radioWatts * b.transfer }
}

/// The latency model of `ladon bench`. For a link rate r (bit/s), transfer(B) = 8·B / r and
///
/// - local computing = s · (preprocess + encoder + decoder/body + heads); nothing is sent;
/// - full offloading = s · JPEG encode + transfer(JPEG + response) + RTT
///   + JPEG decode + preprocess + encoder + decoder/body + heads;
/// - split computing = s · (preprocess + encoder + entropy encode) + transfer(packet + response) + RTT
///   + entropy decode + decoder/body + heads;
///
/// where s is the device slowdown (the device is s times slower than the machine that measured the stages) and
/// the server runs at the measured speed. Every scenario is a + b / r, so where one beats another is found in
/// closed form (``crossover(_:beats:)``).
public struct LatencyModel: Sendable, Equatable {
    public var profile: StageProfile
    public var tasks: BenchTasks
    /// How many times slower the device is than the measuring machine (≥ 1 for a weaker device).
    public var deviceSlowdown: Double
    /// Fixed round trip per request, in seconds.
    public var roundTrip: Double
    /// Bytes of the answer sent back in both offloading scenarios (0: not counted).
    public var responseBytes: Double

    public init(profile: StageProfile, tasks: BenchTasks = .all, deviceSlowdown: Double = 1, roundTrip: Double = 0,
                responseBytes: Double = 0) {
        self.profile = profile
        self.tasks = tasks
        self.deviceSlowdown = deviceSlowdown
        self.roundTrip = roundTrip
        self.responseBytes = responseBytes
    }

    /// The latency of `scenario` at the rate-independent part (device, round trip, server) and the bytes sent.
    private func parts(_ scenario: LatencyScenario) -> (device: Double, roundTrip: Double, server: Double, bytes: Double) {
        let p = profile
        let body = p.decoderBody + p.heads(tasks)
        switch scenario {
        case .local:
            return (deviceSlowdown * (p.preprocess + p.encoder + body), 0, 0, 0)
        case .offloading:
            return (deviceSlowdown * p.jpegEncode, roundTrip, p.jpegDecode + p.preprocess + p.encoder + body,
                    p.jpegBytes + responseBytes)
        case .split:
            return (deviceSlowdown * (p.preprocess + p.encoder + p.entropyEncode), roundTrip, p.entropyDecode + body,
                    p.packetBytes + responseBytes)
        }
    }

    /// The latency of `scenario` at `rate`, part by part.
    public func breakdown(_ scenario: LatencyScenario, at rate: DataRate) -> LatencyBreakdown {
        let q = parts(scenario)
        return LatencyBreakdown(device: q.device, transfer: rate.transferSeconds(bytes: q.bytes), roundTrip: q.roundTrip,
                                server: q.server, bytes: q.bytes)
    }

    /// The end-to-end latency of `scenario` at `rate`, in seconds.
    public func latency(_ scenario: LatencyScenario, at rate: DataRate) -> Double { breakdown(scenario, at: rate).total }

    /// The fastest scenario at `rate` (the first in ``LatencyScenario/allCases`` order on a tie).
    public func fastest(at rate: DataRate) -> LatencyScenario {
        LatencyScenario.allCases.min { latency($0, at: rate) < latency($1, at: rate) }!
    }

    /// The rates at which `a` is strictly faster than `b`.
    ///
    /// With latency fₐ + 8·bₐ/r against f_b + 8·b_b/r, `a` wins where Δf + 8·Δb/r < 0 (Δ = a − b). If `a` sends
    /// fewer bytes it wins below r* = 8·(b_b − bₐ) / Δf (always, if Δf ≤ 0); if it sends more, above
    /// r* = 8·(bₐ − b_b) / (−Δf) (never, if Δf ≥ 0).
    public func crossover(_ a: LatencyScenario, beats b: LatencyScenario) -> Crossover {
        let pa = parts(a), pb = parts(b)
        let fixed = (pa.device + pa.roundTrip + pa.server) - (pb.device + pb.roundTrip + pb.server)
        let bits = 8 * (pa.bytes - pb.bytes)
        if bits == 0 { return fixed < 0 ? .always : .never }
        if bits < 0 {
            guard fixed > 0, let rate = try? DataRate(bitsPerSecond: -bits / fixed) else { return .always }
            return .below(rate)
        }
        guard fixed < 0, let rate = try? DataRate(bitsPerSecond: bits / -fixed) else { return .never }
        return .above(rate)
    }
}
