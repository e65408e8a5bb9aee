import Testing
@testable import LadonCore

@Suite struct TensorTests {
    @Test func indexingIsRowMajor() {
        var t = Tensor(shape: [2, 3, 4, 5])
        t[1, 2, 3, 4] = 7
        #expect(t.scalars[t.count - 1] == 7)
        #expect(t.offset([0, 1, 0, 0]) == 20)
        #expect(t.n == 2 && t.c == 3 && t.h == 4 && t.w == 5)
    }

    @Test func reshapeKeepsScalars() {
        let t = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).reshaped([4])
        #expect(t.shape == [4] && t.scalars == [1, 2, 3, 4])
    }
}
