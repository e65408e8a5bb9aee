// The exact samples of a 16-bit PNG, read from its IDAT stream (zlib inflate, PNG filters, Adam7), for the one case
// libpng's simplified API cannot give them: 16-bit images with an alpha channel.
import CPNG

/// Pillow reads a 16-bit PNG with an alpha channel (gray + alpha, RGBA) by keeping each sample's high byte; libpng's
/// simplified API either premultiplies by alpha (16-bit output) or rounds (`(v * 255 + 32767) / 65535`, 8-bit
/// output), which is 1 off on about half the samples and moves a photo's latent symbols past the parity check.
/// So these files are decoded twice: libpng first, as the judge of the file (CRCs, zlib, truncation: its errors are
/// the ones reported), then this reader takes the samples themselves from the now known-good stream.
enum PNGSixteenBit {
    /// Adam7's seven passes: first column, first row, column step, row step.
    static let adam7: [(x0: Int, y0: Int, dx: Int, dy: Int)] =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

    /// RGB bytes of a 16-bit gray + alpha or RGBA PNG that libpng has already decoded without error: the high byte
    /// of each color sample (gray repeated three times), alpha dropped, as Pillow's `convert("RGB")`.
    static func rgbHighBytes(_ bytes: UnsafeBufferPointer<UInt8>, header: PNGDecoder.Header) throws(ImageError) -> [UInt8] {
        let (w, h, samples) = (header.width, header.height, header.samples)
        precondition(header.bitDepth == 16 && (header.colorType == 4 || header.colorType == 6))
        let pixelBytes = 2 * samples
        // The non-empty passes (one without interlacing) with their sizes, and the size of the filtered stream.
        let passes = (header.interlaced ? adam7 : [(0, 0, 1, 1)]).map { pass in
            (pass, pw: (w - pass.x0 + pass.dx - 1) / pass.dx, ph: (h - pass.y0 + pass.dy - 1) / pass.dy)
        }.filter { $0.pw > 0 && $0.ph > 0 }
        var raw = try inflateIDAT(bytes, expected: passes.reduce(0) { $0 + $1.ph * (1 + $1.pw * pixelBytes) })
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        try raw.withUnsafeMutableBufferPointer { (stream) throws(ImageError) in
            var offset = 0
            for (pass, pw, ph) in passes {
                let rowBytes = pw * pixelBytes
                for y in 0..<ph {
                    let row = offset + y * (1 + rowBytes)
                    try unfilter(stream, row: row + 1, previous: y == 0 ? nil : row - rowBytes, count: rowBytes,
                                 bpp: pixelBytes, filter: stream[row])
                    let outRow = (pass.y0 + y * pass.dy) * w
                    for x in 0..<pw {
                        let pixel = row + 1 + x * pixelBytes, out = 3 * (outRow + pass.x0 + x * pass.dx)
                        for c in 0..<3 { rgb[out + c] = stream[pixel + (samples == 2 ? 0 : 2 * c)] }
                    }
                }
                offset += ph * (1 + rowBytes)
            }
        }
        return rgb
    }

    /// Reverses one row's PNG filter in place (`previous` is the start of the row above's data, `nil` on a
    /// pass's first row).
    static func unfilter(_ s: UnsafeMutableBufferPointer<UInt8>, row: Int, previous: Int?, count: Int, bpp: Int,
                         filter: UInt8) throws(ImageError) {
        @inline(__always) func up(_ i: Int) -> Int { previous.map { Int(s[$0 + i]) } ?? 0 }
        @inline(__always) func left(_ i: Int) -> Int { i >= bpp ? Int(s[row + i - bpp]) : 0 }
        @inline(__always) func upLeft(_ i: Int) -> Int { i >= bpp ? previous.map { Int(s[$0 + i - bpp]) } ?? 0 : 0 }
        switch filter {
        case 0: return
        case 1: for i in bpp..<max(bpp, count) { s[row + i] &+= s[row + i - bpp] }
        case 2: for i in 0..<count { s[row + i] &+= UInt8(truncatingIfNeeded: up(i)) }
        case 3: for i in 0..<count { s[row + i] &+= UInt8(truncatingIfNeeded: (left(i) + up(i)) / 2) }
        case 4:
            for i in 0..<count {
                let (a, b, c) = (left(i), up(i), upLeft(i))
                let p = a + b - c
                let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                s[row + i] &+= UInt8(truncatingIfNeeded: pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
            }
        default:
            throw .corrupt(format: .png, message: "unknown row filter type \(filter)")
        }
    }

    /// The IDAT chunks' data, concatenated and inflated; exactly `expected` bytes or an error.
    static func inflateIDAT(_ bytes: UnsafeBufferPointer<UInt8>, expected: Int) throws(ImageError) -> [UInt8] {
        var compressed: [UInt8] = []
        PNGDecoder.walkChunks(bytes) { type, chunk in
            if type == "IDAT" { compressed.append(contentsOf: bytes[(chunk.lowerBound + 8)..<(chunk.upperBound - 4)]) }
        }
        var out = [UInt8](repeating: 0, count: expected)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt(format: .png, message: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var status: Int32 = Z_OK
        var produced = 0
        compressed.withUnsafeMutableBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                stream.next_in = input.baseAddress
                stream.next_out = output.baseAddress
                // zlib counts in 32-bit words: feed and drain in chunks well under that.
                var consumed = 0
                repeat {
                    let inChunk = min(input.count - consumed, 1 << 30), outChunk = min(output.count - produced, 1 << 30)
                    stream.avail_in = UInt32(inChunk)
                    stream.avail_out = UInt32(outChunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    consumed += inChunk - Int(stream.avail_in)
                    produced += outChunk - Int(stream.avail_out)
                } while status == Z_OK && produced < output.count && (consumed < input.count || stream.avail_out == 0)
            }
        }
        guard produced == expected, status == Z_OK || status == Z_STREAM_END else {
            throw .corrupt(format: .png, message: "the image data inflates to \(produced) bytes, not the \(expected) its header declares")
        }
        return out
    }
}
