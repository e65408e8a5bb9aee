// Convolution hyper-parameters and their shape arithmetic (kept apart from the algorithms).

/// Hyper-parameters of a 2-D convolution (PyTorch `Conv2d` semantics: symmetric zero padding,
/// `out = floor((in + 2·pad − dilation·(k − 1) − 1) / stride) + 1`). Weights are `[outC, inC/groups, kH, kW]`.
package struct Conv2dParameters: Sendable, Equatable, Hashable {
    package var inChannels: Int
    package var outChannels: Int
    package var kernelHeight: Int
    package var kernelWidth: Int
    package var strideHeight: Int
    package var strideWidth: Int
    package var paddingHeight: Int
    package var paddingWidth: Int
    package var dilationHeight: Int
    package var dilationWidth: Int
    package var groups: Int

    /// Square kernel, stride, padding and dilation.
    package init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelHeight: kernelSize,
                  kernelWidth: kernelSize, strideHeight: stride, strideWidth: stride,
                  paddingHeight: padding, paddingWidth: padding, dilationHeight: dilation,
                  dilationWidth: dilation, groups: groups)
    }

    package init(inChannels: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int,
                strideHeight: Int, strideWidth: Int, paddingHeight: Int, paddingWidth: Int,
                dilationHeight: Int = 1, dilationWidth: Int = 1, groups: Int = 1) {
        precondition(inChannels > 0 && outChannels > 0 && kernelHeight > 0 && kernelWidth > 0
                     && strideHeight > 0 && strideWidth > 0 && paddingHeight >= 0 && paddingWidth >= 0
                     && dilationHeight > 0 && dilationWidth > 0 && groups > 0
                     && inChannels % groups == 0 && outChannels % groups == 0,
                     "invalid convolution parameters")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        self.groups = groups
    }

    /// Output height for an input of height `h` (may be ≤ 0 for inputs smaller than the kernel).
    /// Floor division, as PyTorch: a padded input one row short of the dilated kernel gives 0, not 1.
    package func outputHeight(_ h: Int) -> Int {
        floorDivide(h + 2 * paddingHeight - dilationHeight * (kernelHeight - 1) - 1, strideHeight) + 1
    }

    /// Output width for an input of width `w`.
    package func outputWidth(_ w: Int) -> Int {
        floorDivide(w + 2 * paddingWidth - dilationWidth * (kernelWidth - 1) - 1, strideWidth) + 1
    }

    /// The weight tensor shape `[outC, inC/groups, kH, kW]`.
    package var weightShape: [Int] { [outChannels, inChannels / groups, kernelHeight, kernelWidth] }
}
