// Stage-by-stage equality of the Swift Ladon model with the PyTorch reference (Scripts/make_model_fixtures.py).
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct LadonModelTests {
    static let model: LadonModel = try! LadonModel(file: Fixtures.safetensors("model/tiny_model.safetensors"))

    /// The case's reference tensors and the model configured with the resize rule the case used.
    func load(_ i: Int) throws -> (SafeTensorsFile, LadonModel) {
        let case_ = try Fixtures.safetensors("model/tiny_case\(i).safetensors")
        var config = Self.model.config
        config.preprocessing.resizeRule = try #require(ResizeRule(rawValue: case_.metadata["resizeRule"] ?? ResizeRule.torchvision013.rawValue))
        let model = try LadonModel(file: Fixtures.safetensors("model/tiny_model.safetensors"), config: config)
        return (case_, model)
    }

    @Test(arguments: [0, 1]) func preprocessingMatchesGeneralizedRCNNTransform(_ i: Int) throws {
        let (ref, model) = try load(i)
        let input = try model.preprocess(try ref.tensor("image"))
        let size = try ref.integers("resized_size")
        #expect([input.resizedHeight, input.resizedWidth] == size)
        expectClose(input.tensor, try ref.tensor("preprocessed"), rtol: 1e-6, atol: 1e-6, "preprocessed")
    }

    @Test(arguments: [0, 1]) func encoderAndBitstreamMatchCompressAI(_ i: Int) throws {
        let (ref, model) = try load(i)
        let latent = model.encode(try model.preprocess(try ref.tensor("image")))
        let expectedLatent = try ref.tensor("latent")
        expectClose(latent, expectedLatent, rtol: 1e-5, atol: 1e-6, "latent")
        // Bytes are identical unless a value lies within float error of a .5 tie; the fixtures have none.
        let bytes = try model.compress(latent)
        #expect(bytes == (try ref.rawBytes("compressed")))
        let latentHat = try model.decompress(try ref.rawBytes("compressed"), height: latent.h, width: latent.w)
        #expect(latentHat == (try ref.tensor("latent_hat")))
    }

    @Test(arguments: [0, 1]) func serverHalfMatchesPyTorch(_ i: Int) throws {
        let (ref, model) = try load(i)
        let features = model.features(try ref.tensor("latent_hat"))
        expectClose(features.decoder, try ref.tensor("decoder"), rtol: 1e-5, atol: 1e-6, "decoder")
        for (k, name) in ["layer2", "layer3", "layer4"].enumerated() {
            expectClose(features.layers[k], try ref.tensor(name), rtol: 1e-5, atol: 1e-6, name)
        }
        let logits = try #require(model.classify(features))
        expectClose(logits, try ref.tensor("logits"), rtol: 1e-5, atol: 1e-6, "logits")
        let seg = try #require(model.segmentationHead)
        expectClose(seg.logits(features.layers[2]), try ref.tensor("seg_logits_small"), rtol: 1e-5, atol: 1e-6, "seg small")
        let result = try #require(model.segment(features, paddedHeight: features.decoder.h * 4, paddedWidth: features.decoder.w * 4))
        expectClose(result.logits, try ref.tensor("seg_logits"), rtol: 1e-5, atol: 1e-6, "seg logits")
        let mask = try ref.integers("mask")
        let agree = zip(result.mask, mask).filter { Int($0) == $1 }.count
        #expect(Double(agree) / Double(mask.count) >= 0.999)
    }

    @Test(arguments: [0, 1]) func wholePipelineAgreesEndToEnd(_ i: Int) throws {
        let (ref, model) = try load(i)
        let result = try model.infer(try ref.tensor("image"))
        #expect(result.compressed == (try ref.rawBytes("compressed")))
        let logits = Tensor(shape: [1, result.classificationLogits!.count], scalars: result.classificationLogits!)
        expectClose(logits, try ref.tensor("logits"), rtol: 1e-4, atol: 1e-5, "logits")
        #expect(result.latentShape == Array((try ref.entry("latent")).shape.dropFirst()))
        // Detections: same count, labels and order; boxes (original pixels) and scores within float error.
        let boxes = try ref.tensor("det_boxes"), scores = try ref.tensor("det_scores").scalars
        let labels = try ref.integers("det_labels")
        #expect(result.detections.count == labels.count)
        #expect(labels.count > 10, "the fixture must exercise NMS and the thresholds")
        for (k, d) in result.detections.prefix(labels.count).enumerated() {
            #expect(d.label == labels[k], "detection \(k)")
            #expect(abs(d.score - scores[k]) <= 2e-5, "detection \(k) score \(d.score) vs \(scores[k])")
            let expected = Array(boxes.scalars[(4 * k)..<(4 * k + 4)])
            let actual = [d.box.x1, d.box.y1, d.box.x2, d.box.y2]
            #expect(zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-3 }, "detection \(k) box \(actual) vs \(expected)")
        }
    }

    @Test func resizeRuleFollowsTorchvision013AndModern() {
        // Values of torchvision 0.13's float32 resize rule (README, "Weights"; checked against torchvision on 11,011 sizes).
        let legacy: [((Int, Int), (Int, Int))] = [((300, 400), (311, 415)), ((480, 481), (415, 416)),
                                                   ((480, 640), (312, 416)), ((427, 640), (277, 416)),
                                                   ((375, 500), (312, 416)), ((416, 416), (416, 416))]
        for ((h, w), (eh, ew)) in legacy {
            let s = Preprocessor.resizedSize(height: h, width: w, minSize: 416, maxSize: 416, rule: .torchvision013)
            #expect(s.height == eh && s.width == ew, "\(h)x\(w)")
        }
        let modern = Preprocessor.resizedSize(height: 300, width: 400, minSize: 416, maxSize: 416, rule: .torchvision015)
        #expect(modern.height == 312 && modern.width == 416)
    }

    @Test func weightsWithoutConfigOrWithWrongShapesFailClearly() throws {
        var writer = SafeTensorsWriter()
        writer.add("x", Tensor(shape: [1]))
        let bare = try SafeTensorsFile(data: writer.serialized(), source: "bare.safetensors")
        #expect(throws: LadonError.self) { try LadonModel(file: bare) }
        do {
            _ = try LadonModel(file: bare, config: Self.model.config)
            Issue.record("expected a missing-tensor error")
        } catch {
            #expect("\(error)".contains("encoder.encoder.0.weight"))
        }
    }
}
