// Direct convolution: register-blocked 6 output channels × 16 output columns, no im2col buffer.

extension Kernels {
    /// Direct convolution per image. The input is first copied into zero-padded, stride-phase-split rows
    /// (`planes[ic][paddedRow][phase][x']` = padded input column `x'·strideW + phase`), so every kernel tap
    /// of 16 neighbouring output columns is one contiguous vector load; the weights are packed as
    /// `[group][block of 6 out-channels][tap][6]`. Each 6×16 output tile accumulates over all
    /// `inC/groups·kH·kW` taps in registers and gets bias, residual and ReLU fused into its store.
    static func conv2dDirect(_ job: ConvJob) {
        let p = job.p
        let width = GEMMVector.scalarCount, block = 6
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        let (sw, dh, dw) = (p.strideWidth, p.dilationHeight, p.dilationWidth)
        let paddedH = job.h + 2 * p.paddingHeight
        let rowWidth = roundUp(job.ow, width) + ((p.kernelWidth - 1) * dw) / sw
        let tapCount = cinG * p.kernelHeight * p.kernelWidth
        let blocks = (coutG + block - 1) / block
        let planeCount = p.inChannels * paddedH * sw * rowWidth
        let packedCount = p.groups * blocks * tapCount * block
        // Offset of each tap's vector relative to (group's first channel, output row, output column 0).
        var offsets = [Int]()
        offsets.reserveCapacity(tapCount)
        for icg in 0..<cinG {
            for ky in 0..<p.kernelHeight {
                for kx in 0..<p.kernelWidth {
                    offsets.append(((icg * paddedH + ky * dh) * sw + (kx * dw) % sw) * rowWidth + (kx * dw) / sw)
                }
            }
        }
        let plane = job.oh * job.ow
        let items = p.groups * blocks * job.oh
        let flops = 2 * coutG * tapCount * plane * p.groups
        let parts = flops < 4_000_000 ? 1 : min(job.threads, items)
        KernelScratch.shared.withBuffer(count: planeCount + packedCount) { scratch in
            let planes = scratch, packed = scratch + planeCount
            // Pack weights, zero-filling the channels past coutG in the last block of each group.
            for g in 0..<p.groups {
                for blk in 0..<blocks {
                    let dst = packed + (g * blocks + blk) * tapCount * block
                    for i in 0..<block {
                        let oc = blk * block + i
                        let src = job.weight + (g * coutG + min(oc, coutG - 1)) * tapCount
                        for t in 0..<tapCount { dst[t * block + i] = oc < coutG ? src[t] : 0 }
                    }
                }
            }
            offsets.withUnsafeBufferPointer { offsetBuffer in
                let tapOffsets = offsetBuffer.baseAddress!
                for b in 0..<job.batch {
                    let fill = DirectPlanes(p: p, input: job.input + b * p.inChannels * job.h * job.w,
                                            h: job.h, w: job.w, paddedH: paddedH, rowWidth: rowWidth, planes: planes)
                    let channelParts = planeCount >= 1 << 16 ? min(job.threads, p.inChannels) : 1
                    WorkSplit.forEachPart(channelParts) { part in
                        fill.channels(p.inChannels * part / channelParts..<p.inChannels * (part + 1) / channelParts)
                    }
                    let tiles = DirectTiles(job: job, batch: b, planes: UnsafePointer(planes), packed: UnsafePointer(packed),
                                            offsets: tapOffsets, tapCount: tapCount, blocks: blocks,
                                            paddedH: paddedH, rowWidth: rowWidth)
                    WorkSplit.forEachPart(parts) { part in tiles.run(items * part / parts..<items * (part + 1) / parts) }
                }
            }
        }
    }

    /// Computes one 6×16 direct-convolution tile: `Σ_t packed[t][i] · src[offsets[t] + j]`, then stores it
    /// like ``gemmMicroKernel6x16`` (valid `rows×cols` corner, fused epilogue).
    @inline(never)
    static func directMicroKernel(_ tapCount: Int, _ offsets: UnsafePointer<Int>, _ src: UnsafePointer<Float>,
                                  _ packed: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                                  _ rows: Int, _ cols: Int, _ epilogue: GEMMEpilogue?,
                                  _ tile: UnsafeMutablePointer<Float>) {
        typealias V = GEMMVector
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var wp = packed
        for t in 0..<tapCount {
            let x = UnsafeRawPointer(src + offsets[t]).loadUnaligned(as: V.self)
            fusedMultiplyAdd(&c0, V(repeating: wp[0]), x)
            fusedMultiplyAdd(&c1, V(repeating: wp[1]), x)
            fusedMultiplyAdd(&c2, V(repeating: wp[2]), x)
            fusedMultiplyAdd(&c3, V(repeating: wp[3]), x)
            fusedMultiplyAdd(&c4, V(repeating: wp[4]), x)
            fusedMultiplyAdd(&c5, V(repeating: wp[5]), x)
            wp += 6
        }
        let full = rows == 6 && cols == V.scalarCount
        let dst = full ? c : tile
        let ld = full ? ldc : V.scalarCount
        let vectorEpilogue = full ? epilogue : nil
        storeVector(c0, dst, 0, false, vectorEpilogue)
        storeVector(c1, dst + ld, 1, false, vectorEpilogue)
        storeVector(c2, dst + 2 * ld, 2, false, vectorEpilogue)
        storeVector(c3, dst + 3 * ld, 3, false, vectorEpilogue)
        storeVector(c4, dst + 4 * ld, 4, false, vectorEpilogue)
        storeVector(c5, dst + 5 * ld, 5, false, vectorEpilogue)
        if !full { copyEdgeTile(tile, V.scalarCount, c, ldc, rows, cols, false, epilogue) }
    }
}

/// Copies input channels of one image into the padded, phase-split rows ``Kernels/conv2dDirect(_:)`` reads.
struct DirectPlanes {
    let p: Conv2dParameters
    let input: UnsafePointer<Float>
    let h: Int, w: Int, paddedH: Int, rowWidth: Int
    let planes: UnsafeMutablePointer<Float>

    func channels(_ range: Range<Int>) {
        let sw = p.strideWidth, pw = p.paddingWidth
        for ic in range {
            for yp in 0..<paddedH {
                let iy = yp - p.paddingHeight
                for phase in 0..<sw {
                    let dst = planes + ((ic * paddedH + yp) * sw + phase) * rowWidth
                    guard iy >= 0 && iy < h else {
                        dst.update(repeating: 0, count: rowWidth)
                        continue
                    }
                    let src = input + (ic * h + iy) * w
                    // Padded column x'·sw + phase is input column x'·sw + phase − pw.
                    let shift = phase - pw
                    let lo = min(rowWidth, max(0, ceilDivide(-shift, sw)))
                    let hi = max(lo, min(rowWidth, floorDivide(w - 1 - shift, sw) + 1))
                    dst.update(repeating: 0, count: lo)
                    if sw == 1 {
                        (dst + lo).update(from: src + lo + shift, count: hi - lo)
                    } else {
                        for x in lo..<hi { dst[x] = src[x * sw + shift] }
                    }
                    (dst + hi).update(repeating: 0, count: rowWidth - hi)
                }
            }
        }
    }
}

/// The output tiles of one image: work item `(group, channel block, output row)`, flattened.
struct DirectTiles {
    let job: ConvJob
    let batch: Int
    let planes: UnsafePointer<Float>
    let packed: UnsafePointer<Float>
    let offsets: UnsafePointer<Int>
    let tapCount: Int, blocks: Int, paddedH: Int, rowWidth: Int

    func run(_ items: Range<Int>) {
        let p = job.p, width = GEMMVector.scalarCount
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        let plane = job.oh * job.ow
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * width) { tileBuffer in
            let tile = tileBuffer.baseAddress!
            for item in items {
                let oy = item % job.oh, blk = (item / job.oh) % blocks, g = item / (job.oh * blocks)
                let channel = g * coutG + blk * 6
                let rows = min(6, coutG - blk * 6)
                let rowBase = planes + ((g * cinG * paddedH + oy * p.strideHeight) * p.strideWidth) * rowWidth
                let weights = packed + (g * blocks + blk) * tapCount * 6
                let out = job.output + (batch * p.outChannels + channel) * plane + oy * job.ow
                let epilogue = job.epilogue(batch: batch, channel: channel, row: oy)
                let hasEpilogue = !epilogue.isNone
                var ox = 0
                while ox < job.ow {
                    Kernels.directMicroKernel(tapCount, offsets, rowBase + ox, weights, out + ox, plane,
                                              rows, min(width, job.ow - ox),
                                              hasEpilogue ? epilogue.offset(row: 0, column: ox) : nil, tile)
                    ox += width
                }
            }
        }
    }
}
