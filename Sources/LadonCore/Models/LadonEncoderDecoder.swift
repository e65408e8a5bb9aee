// The learned encoder (device side) and decoder (server side) around the entropy bottleneck.

/// sc2bench `FPBasedResNetBottleneck.encoder`: conv 5×5/2 → GDN1 → conv 5×5/2 → GDN1 → conv 2×2 (no biases).
/// Maps a padded `[N, 3, H, W]` image to the `[N, C, H/4 − 1, W/4 − 1]` latent.
public struct LadonEncoder: Sendable {
    package let conv1: Conv2d, gdn1: GDN, conv2: Conv2d, gdn2: GDN, conv3: Conv2d

    /// Loads `0.weight`, `1.*`, `2.weight`, `3.*`, `4.weight` from `scope` (e.g. `encoder.encoder`).
    package init(weights scope: WeightScope, channels ch: [Int]) throws(LadonError) {
        conv1 = try Conv2d(weights: scope.scope("0"), parameters: .init(inChannels: ch[0], outChannels: ch[1], kernelSize: 5, stride: 2, padding: 2), hasBias: false)
        gdn1 = try GDN(weights: scope.scope("1"), channels: ch[1], inverse: false)
        conv2 = try Conv2d(weights: scope.scope("2"), parameters: .init(inChannels: ch[1], outChannels: ch[2], kernelSize: 5, stride: 2, padding: 2), hasBias: false)
        gdn2 = try GDN(weights: scope.scope("3"), channels: ch[2], inverse: false)
        conv3 = try Conv2d(weights: scope.scope("4"), parameters: .init(inChannels: ch[2], outChannels: ch[3], kernelSize: 2, stride: 1, padding: 0), hasBias: false)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv3(conv2(conv1(x, thenGDN: gdn1), thenGDN: gdn2))
    }
}

/// sc2bench `FPBasedResNetBottleneck.decoder`: conv 2×2 p1 → IGDN1 → conv 2×2 p0 → IGDN1 → conv 2×2 p1.
/// Maps the `[N, C, h, w]` latent to `[N, 256, h + 1, w + 1]` (the ResNet layer1-sized feature map).
public struct LadonDecoder: Sendable {
    package let conv1: Conv2d, igdn1: GDN, conv2: Conv2d, igdn2: GDN, conv3: Conv2d

    /// Loads `0.weight`, `1.*`, `2.weight`, `3.*`, `4.weight` from `scope` (e.g. `shared_body.decoder`).
    package init(weights scope: WeightScope, channels ch: [Int]) throws(LadonError) {
        conv1 = try Conv2d(weights: scope.scope("0"), parameters: .init(inChannels: ch[0], outChannels: ch[1], kernelSize: 2, stride: 1, padding: 1), hasBias: false)
        igdn1 = try GDN(weights: scope.scope("1"), channels: ch[1], inverse: true)
        conv2 = try Conv2d(weights: scope.scope("2"), parameters: .init(inChannels: ch[1], outChannels: ch[2], kernelSize: 2, stride: 1, padding: 0), hasBias: false)
        igdn2 = try GDN(weights: scope.scope("3"), channels: ch[2], inverse: true)
        conv3 = try Conv2d(weights: scope.scope("4"), parameters: .init(inChannels: ch[2], outChannels: ch[3], kernelSize: 2, stride: 1, padding: 1), hasBias: false)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv3(igdn2(conv2(igdn1(conv1(x)))))
    }
}
