// Times every stage of the device half, the server half and the JPEG path on this machine.
import Foundation
import LadonCore
import LadonImage

/// A timed stage of `ladon bench`.
public enum BenchStage: String, Sendable, Codable, CaseIterable {
    case preprocess, encoder, entropyEncode, jpegEncode
    case jpegDecode, entropyDecode, decoderBody, classificationHead, detectionHead, segmentationHead

    /// Where the stage runs in split computing (JPEG encoding: on the device when offloading). Full offloading
    /// also runs `preprocess` and `encoder` on the server.
    public enum Side: String, Sendable, Codable { case device, server }

    public var side: Side {
        switch self {
        case .preprocess, .encoder, .entropyEncode, .jpegEncode: .device
        default: .server
        }
    }

    /// The name in the text table.
    public var title: String {
        switch self {
        case .preprocess: "preprocess"
        case .encoder: "encoder"
        case .entropyEncode: "entropy encode"
        case .jpegEncode: "JPEG encode"
        case .jpegDecode: "JPEG decode"
        case .entropyDecode: "entropy decode"
        case .decoderBody: "decoder + body"
        case .classificationHead: "classification head"
        case .detectionHead: "detection head"
        case .segmentationHead: "segmentation head"
        }
    }
}

/// How ``StageBenchmark`` repeats the stages.
public enum StageTiming: String, Sendable, Codable, CaseIterable {
    /// Whole passes, every stage once per pass in pipeline order, as `ladon infer` and the edge service run them:
    /// each stage starts with the caches the stage before it left (a small head reads its weights from memory).
    case pipeline
    /// Each stage rerun on its own input (its warm-up runs, then its timed runs) before the next stage starts: warm
    /// caches, the way single-stage benchmarks time a model part (ONNX Runtime's perf test, the ONNX Runtime column of
    /// `Scripts/bench/compare_ort.py`). A like-for-like comparison with those, not what a deployment sees.
    case isolated
}

/// Measures the stages of a model on images, on the real intermediate values (the server decodes the device's real
/// bytes), with wall-clock time per stage: per image `warmupRuns` untimed and `timedRuns` timed runs of every stage,
/// as whole passes or stage by stage (``StageTiming``).
public struct StageBenchmark: Sendable {
    public var warmupRuns: Int
    public var timedRuns: Int
    /// Quality (1…100) of the JPEG sent in full offloading.
    public var jpegQuality: Int
    public var timing: StageTiming

    /// 95: a JPEG close enough to the camera's image that offloading costs no accuracy, the condition under which
    /// the three scenarios give the same answers and only their latency differs.
    public static let defaultJPEGQuality = 95

    public init(warmupRuns: Int = 2, timedRuns: Int = 10, jpegQuality: Int = StageBenchmark.defaultJPEGQuality,
                timing: StageTiming = .pipeline) {
        self.warmupRuns = warmupRuns
        self.timedRuns = timedRuns
        self.jpegQuality = jpegQuality
        self.timing = timing
    }

    /// What one image sends.
    public struct ImageSizes: Sendable, Equatable, Codable {
        public var file: String
        public var width: Int, height: Int
        /// CompressAI's byte string (the payload).
        public var compressedBytes: Int
        /// The whole packet on the wire.
        public var packetBytes: Int
        /// The JPEG at the benchmark's quality.
        public var jpegBytes: Int
    }

    /// The stage timings of all timed runs of all images, and each image's sizes.
    public struct Measurement: Sendable, Equatable {
        /// Seconds per stage; a head the model lacks has no entry.
        public var stages: [BenchStage: TimingSummary]
        public var images: [ImageSizes]

        /// The latency model's inputs: stage medians (0 for a missing head) and the median sizes over the images.
        public var profile: StageProfile {
            func t(_ s: BenchStage) -> Double { stages[s]?.median ?? 0 }
            func median(_ key: KeyPath<ImageSizes, Int>) -> Double { TimingSummary(images.map { Double($0[keyPath: key]) }).median }
            return StageProfile(preprocess: t(.preprocess), encoder: t(.encoder), entropyEncode: t(.entropyEncode),
                                jpegEncode: t(.jpegEncode), jpegDecode: t(.jpegDecode), entropyDecode: t(.entropyDecode),
                                decoderBody: t(.decoderBody), classificationHead: t(.classificationHead),
                                detectionHead: t(.detectionHead), segmentationHead: t(.segmentationHead),
                                packetBytes: median(\.packetBytes), jpegBytes: median(\.jpegBytes))
        }
    }

    /// Runs the benchmark. `packetBytes` gives the wire size of an encoded image (the packet format lives in
    /// EdgeSplit, which this module does not depend on).
    public func measure(model: LadonModel, images: [(file: String, image: RGBImage)],
                        packetBytes: (EncodedImage) -> Int) throws -> Measurement {
        precondition(!images.isEmpty && timedRuns >= 1 && warmupRuns >= 0)
        var samples: [BenchStage: [Double]] = [:]
        var sizes: [ImageSizes] = []
        let plan = runPlan
        for (file, image) in images {
            var last: (compressed: Int, packet: Int, jpeg: Int) = (0, 0, 0)
            for run in 0..<plan.passes {
                var stopwatch = Stopwatch()
                last = try pass(model: model, image: image, reruns: plan.reruns, stopwatch: &stopwatch, packetBytes: packetBytes)
                guard run >= plan.untimedPasses else { continue }
                for (stage, seconds) in stopwatch.laps {
                    samples[BenchStage(rawValue: stage)!, default: []].append(seconds)
                }
            }
            sizes.append(ImageSizes(file: file, width: image.width, height: image.height, compressedBytes: last.compressed,
                                    packetBytes: last.packet, jpegBytes: last.jpeg))
        }
        return Measurement(stages: samples.mapValues { TimingSummary($0) }, images: sizes)
    }

    /// How many passes over the stages run per image, how many of them first untimed, and how often each pass runs
    /// each stage untimed and then timed. Pipeline: whole passes, each stage once per pass. Isolated: one pass that
    /// reruns each stage in place.
    package var runPlan: (passes: Int, untimedPasses: Int, reruns: (warmup: Int, timed: Int)) {
        switch timing {
        case .pipeline: (warmupRuns + timedRuns, warmupRuns, (warmup: 0, timed: 1))
        case .isolated: (1, 0, (warmup: warmupRuns, timed: timedRuns))
        }
    }

    /// One pass over every stage, each run `reruns.warmup` times untimed and then `reruns.timed` times timed before
    /// the next stage takes its result; returns the sizes it produced.
    private func pass(model: LadonModel, image: RGBImage, reruns: (warmup: Int, timed: Int), stopwatch: inout Stopwatch,
                      packetBytes: (EncodedImage) -> Int) throws -> (compressed: Int, packet: Int, jpeg: Int) {
        func time<T>(_ stage: BenchStage, _ body: () throws -> T) throws -> T {
            for _ in 0..<reruns.warmup { _ = try body() }
            var value = try stopwatch.time(stage.rawValue, body)
            for _ in 1..<max(1, reruns.timed) { value = try stopwatch.time(stage.rawValue, body) }
            return value
        }
        let device = model.device, server = model.server
        let input = try time(.preprocess) {
            try device.preprocess(rgb: image.pixels, width: image.width, height: image.height)
        }
        let latent = try time(.encoder) { device.encode(input) }
        let bytes = try time(.entropyEncode) { try device.compress(latent) }
        let encoded = EncodedImage(modelID: device.modelID, geometry: ImageGeometry(input), latentChannels: latent.c,
                                   latentHeight: latent.h, latentWidth: latent.w, bytes: bytes)
        let latentHat = try time(.entropyDecode) { try server.decompress(bytes, height: latent.h, width: latent.w) }
        let features = try time(.decoderBody) { server.features(latentHat) }
        if server.classificationHead != nil { _ = try time(.classificationHead) { server.classify(features) } }
        if server.detectionHead != nil { _ = try time(.detectionHead) { try server.detect(features, geometry: encoded.geometry) } }
        if server.segmentationHead != nil {
            _ = try time(.segmentationHead) {
                server.segment(features, paddedHeight: encoded.geometry.paddedHeight, paddedWidth: encoded.geometry.paddedWidth)
            }
        }
        let jpeg = try time(.jpegEncode) { try JPEGEncoder.encode(rgb: image, quality: jpegQuality) }
        _ = try time(.jpegDecode) { try ImageDecoder.decode(bytes: jpeg) }
        return (bytes.count, packetBytes(encoded), jpeg.count)
    }
}
