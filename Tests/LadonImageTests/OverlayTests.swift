// Overlays: segmentation blending, box labels that stay inside the image and contrast with their tab, the legend.
import Testing
@testable import LadonImage

@Suite struct OverlayTests {
    func grey(_ w: Int, _ h: Int, _ v: UInt8 = 128) -> RGBImage {
        RGBImage(width: w, height: h, pixels: [UInt8](repeating: v, count: w * h * 3))
    }

    func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        let i = 3 * (y * image.width + x)
        return Array(image.pixels[i..<(i + 3)])
    }

    @Test func segmentationBlendsOnlyForegroundPixels() {
        let image = grey(2, 1, 0)
        let out = Overlay.segmentation(on: image, classIDs: [0, 15], opacity: 0.5)
        #expect(pixel(out, 0, 0) == [0, 0, 0])
        let (r, g, b) = Overlay.vocColor(15)
        let half = { (v: UInt8) in UInt8((Float(v) * 0.5).rounded()) }
        #expect(pixel(out, 1, 0) == [half(r), half(g), half(b)])
    }

    @Test func labelsStayInsideTheImageAndContrastWithTheirTab() {
        // A box at the right edge: its label tab is moved left so it is drawn whole.
        let image = grey(120, 60)
        let box = Overlay.LabelledBox(x1: 110, y1: 30, x2: 119, y2: 59, label: "person 0.99", color: (255, 255, 0))
        let out = Overlay.boxes(on: image, [box])
        let tabWidth = "person 0.99".utf8.count * 6 + 4
        #expect(pixel(out, 119 - tabWidth + 1, 20) != [128, 128, 128], "the tab reaches into the image from the right edge")
        // Text is black on a bright tab and white on a dark one.
        #expect(Overlay.textColor(on: (255, 255, 0)) == (0, 0, 0))
        #expect(Overlay.textColor(on: (0, 0, 128)) == (255, 255, 255))
        // Degenerate boxes (NaN, outside, zero size) draw nothing harmful.
        let odd = [Overlay.LabelledBox(x1: .nan, y1: -5, x2: 1e9, y2: .infinity, label: "x", color: (1, 2, 3))]
        #expect(Overlay.boxes(on: grey(3, 3), odd).pixels.count == 27)
        #expect(Overlay.boxes(on: RGBImage(width: 0, height: 0, pixels: []), odd).pixels.isEmpty)
    }

    @Test func legendListsEntriesOnADarkPanelAndScalesWithTheImage() {
        let image = grey(200, 100, 255)
        let out = Overlay.legend(on: image, [("dog", (255, 0, 0)), ("person", (0, 0, 255))])
        #expect(pixel(out, 1, 1) != [255, 255, 255], "panel darkens the corner")
        #expect(pixel(out, 6, 6) == [255, 0, 0], "first swatch")
        #expect(pixel(out, 199, 99) == [255, 255, 255], "the rest of the image is untouched")
        #expect(Overlay.legend(on: image, []) == image)
        #expect(Overlay.textScale(for: grey(100, 100)) == 1 && Overlay.textScale(for: grey(4000, 3000)) == 6)
    }
}
