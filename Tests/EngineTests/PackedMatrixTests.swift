import Foundation
import Testing
@testable import Engine

@Suite struct PackedMatrixTests {
    static func matrix(_ rows: Int, _ columns: Int, seed: UInt64 = 3) -> Tensor {
        var rng = SeededRandom(seed: seed)
        let t = Tensor(zeros: [rows, columns])
        rng.fillNormal(t, std: 0.05)
        return t
    }

    @Test func float16KeepsElevenBits() {
        let w = Self.matrix(5, 40)
        let back = PackedMatrix(w, format: .float16).unpacked()
        for i in 0..<w.count {
            #expect(abs(back.data[i] - w.data[i]) <= abs(w.data[i]) * 0x1p-11 + 0x1p-24)
        }
        #expect(PackedMatrix(w, format: .float16).bytes == 2 * w.count)
    }

    /// The conversion without an instruction equals the library's on every finite half,
    /// normal and subnormal, of both signs.
    @Test func everyFiniteHalfWidensExactly() {
        var mismatches = 0
        for start in stride(from: 0, to: 1 << 16, by: 8) {
            let bits = SIMD8<UInt16>((0..<8).map { UInt16(start + $0) })
            let wide = PackedMatrix.widen(bits)
            for lane in 0..<8 where Float16(bitPattern: bits[lane]).isFinite {
                if wide[lane].bitPattern != Float(Float16(bitPattern: bits[lane])).bitPattern { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func q8_0IsWithinHalfAStepOfItsBlock() {
        // 40 columns: one whole block and a tail of 8 in every row; the last row is zero.
        let w = Self.matrix(5, 40)
        for j in 0..<40 { w.data[4 * 40 + j] = 0 }
        let packed = PackedMatrix(w, format: .q8_0)
        let back = packed.unpacked()
        for r in 0..<5 {
            for block in [0..<32, 32..<40] {
                let values = block.map { w.data[r * 40 + $0] }
                let step = values.map(abs).max()! / 127
                for j in block { #expect(abs(back.data[r * 40 + j] - w.data[r * 40 + j]) <= step / 2 * 1.0001) }
            }
        }
        #expect((160..<200).allSatisfy { back.data[$0] == 0 })
        #expect(packed.bytes == 200 + 10 * 4)
    }

    /// A packed weight computes what the same op computes on its unpacked values, bit for
    /// bit, forward and backward, with and without a low-rank branch.
    @Test(arguments: PackedMatrix.Format.allCases)
    func projectionsReadThePackedValues(format: PackedMatrix.Format) {
        let w = Self.matrix(6, 8)
        let packed = Variable(w.copy())
        packed.packed = PackedMatrix(w, format: format)
        packed.value.fill(.nan)  // never read while packed
        let dense = Variable(packed.packed!.unpacked())
        let x = Self.matrix(3, 8, seed: 4), a = Self.matrix(2, 8, seed: 5), b = Self.matrix(6, 2, seed: 6)
        func run(_ weight: Variable, lowRank: Bool) -> (y: [Float], dx: [Float], da: [Float]) {
            let tape = Tape()
            let input = Variable(x.copy(), requiresGrad: true), av = Variable(a.copy(), requiresGrad: true)
            let y = lowRank
                ? tape.linear(input, weight, lowRank: LowRankUpdate(input: input, a: av, b: Variable(b.copy()), scale: 2))
                : tape.linear(input, weight)
            tape.backward(tape.sum(y))
            return (y.value.scalars, input.grad!.scalars, av.grad?.scalars ?? [])
        }
        for lowRank in [false, true] {
            let p = run(packed, lowRank: lowRank), d = run(dense, lowRank: lowRank)
            #expect(p.y == d.y && p.dx == d.dx && p.da == d.da)
        }
    }

    @Test func movedValuesReadAndWriteAsBefore() {
        let page = Int(sysconf(Int32(_SC_PAGESIZE))) / 4
        let storage = TensorStorage(count: 300 * page)  // 1.2 MB: a mapped buffer
        for i in 0..<storage.count { storage.pointer[i] = Float(i) }
        let moved = storage.moveToFile(elements: 10..<(3 * page + 50))
        // Whole pages inside the range: from the second page to the end of the third.
        #expect(moved == 2 * page * 4)
        #expect((0..<storage.count).allSatisfy { storage.pointer[$0] == Float($0) })
        // Dropped pages are read from the file again.
        storage.dropMovedPages(elements: 10..<(3 * page + 50))
        #expect((0..<storage.count).allSatisfy { storage.pointer[$0] == Float($0) })
        storage.pointer[page + 1] = -1
        #expect(storage.pointer[page + 1] == -1)
        // A heap buffer (under 1 MiB) stays where it is.
        let small = TensorStorage(count: 2 * page)
        #expect(small.moveToFile(elements: 0..<(2 * page)) == 0)
    }
}
