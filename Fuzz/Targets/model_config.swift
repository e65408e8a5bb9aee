// Fuzz target: LadonModelConfig.decode(json:) and everything derived from a config that passes validation
// (tensor layout, preprocessing geometry, detection head settings).
import Foundation
import LadonCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let config = try? LadonModelConfig.decode(json: Data(bytes: data, count: size), source: "fuzz") else { return 0 }
    let specs = LadonWeightLayout.specs(for: config)
    precondition(!specs.isEmpty)
    for spec in specs { _ = spec.shape.reduce(1) { $0.multipliedReportingOverflow(by: max($1, 1)).partialValue } }
    if let p = try? Preprocessor(config.preprocessing) {
        for (h, w) in [(1, 1), (480, 640), (1 << 20, 1), (4000, 3000), (1 << 20, 1 << 20)] {
            if let g = p.geometry(height: h, width: w) {
                precondition(g.paddedHeight >= g.resizedHeight && g.paddedWidth >= g.resizedWidth)
            }
        }
    }
    if let d = config.detection {
        _ = try? DetectionHeadConfig(d, inChannels: [config.decoderChannels[3]] + config.stageChannels)
    }
    // A valid config survives its own JSON.
    let again = try? LadonModelConfig.decode(json: Data(config.jsonString().utf8))
    precondition(again == config, "config JSON round trip differs")
    return 0
}
