import Foundation
import Testing
@testable import Checkpoints

@Suite struct HDF5FileTests {
    @Test func datasetsOfEveryTypeRoundTrip() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.h5")
        let file = try HDF5File.create(at: url)
        try file.write("/a/b/floats", shape: [2, 3], array: [Float](arrayLiteral: 1, -2, 3.5, 4, 5, 6e-3))
        try file.write("/ints8", shape: [3], array: [Int8](arrayLiteral: -1, 0, 3))
        try file.write("/bytes", shape: [4], array: [UInt8](arrayLiteral: 0, 255, 7, 9))
        try file.write("/ints32", shape: [], array: [Int32](arrayLiteral: -123456))
        try file.close()

        let r = try HDF5File.open(url)
        #expect(try r.children(of: "/") == ["a", "bytes", "ints32", "ints8"])
        #expect(r.kind(of: "/a/b") == .group)
        #expect(r.kind(of: "/a/b/floats") == .dataset)
        #expect(r.kind(of: "/a/nope/x") == nil)
        let floats = try r.readArray("/a/b/floats", as: Float.self, limit: 100)
        #expect(floats.shape == [2, 3])
        #expect(floats.values == [1, -2, 3.5, 4, 5, 6e-3])
        #expect(try r.readArray("/ints8", as: Int8.self, limit: 10).values == [-1, 0, 3])
        #expect(try r.readArray("/bytes", as: UInt8.self, limit: 10).values == [0, 255, 7, 9])
        let scalar = try r.readArray("/ints32", as: Int32.self, limit: 10)
        #expect(scalar.shape == [] && scalar.values == [-123456])
    }

    @Test func attributesRoundTripIncludingUTF8() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.h5")
        let file = try HDF5File.create(at: url)
        try file.createGroup("/g")
        let values: [String: AttributeValue] = [
            "s": .string("héllo — ✓"), "empty": .string(""), "i": .int(-42), "d": .double(0.125),
            "is": .ints([1, 2, 3]), "ds": .doubles([0.5, -1.5]),
        ]
        for (k, v) in values { try file.setAttribute(k, v, on: "/g") }
        try file.setAttribute("i", .int(7), on: "/g")  // replacing keeps one attribute
        try file.close()

        let r = try HDF5File.open(url)
        var expected = values
        expected["i"] = .int(7)
        #expect(try r.attributes(of: "/g") == expected)
        #expect(try r.attribute("s", of: "/g") == .string("héllo — ✓"))
        #expect(try r.attribute("missing", of: "/g") == nil)
    }

    @Test func typedErrorsForMissingWrongTypeAndLimits() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("e.h5")
        let file = try HDF5File.create(at: url)
        try file.write("/x", shape: [10], array: [Float](repeating: 1, count: 10))
        try file.close()
        let r = try HDF5File.open(url)
        #expect(throws: HDF5Error.missing(file: url.path, path: "/y")) { try r.readArray("/y", as: Float.self, limit: 10) }
        #expect(throws: HDF5Error.wrongType(file: url.path, path: "/x", expected: "int8", found: "float32")) {
            try r.readArray("/x", as: Int8.self, limit: 10)
        }
        #expect(throws: HDF5Error.tooLarge(file: url.path, path: "/x", shape: [10], limit: 5)) {
            try r.readArray("/x", as: Float.self, limit: 5)
        }
        let text = dir.appendingPathComponent("plain.txt")
        try Data("just text, not HDF5".utf8).write(to: text)
        #expect(throws: HDF5Error.notHDF5(file: text.path)) { try HDF5File.open(text) }
        let absent = dir.appendingPathComponent("absent.h5")
        #expect(throws: HDF5Error.cannotOpen(file: absent.path, reason: "no such file")) { try HDF5File.open(absent) }
    }

    @Test(.enabled(if: PythonH5py.enabled, "python3 with h5py not found (Debian: apt install python3-h5py)"))
    func readsAttributesWrittenByH5py() throws {
        let python = try #require(PythonH5py.python)
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("py.h5")
        try PythonH5py.run(python, """
        import h5py, numpy as np, sys
        with h5py.File(sys.argv[1], "w") as f:
            g = f.create_group("g")
            g.attrs["vl"] = "naïve"
            g.attrs["fixed"] = np.bytes_(b"abc")
            g.attrs["i32"] = np.int32(5)
            g.attrs["f32"] = np.float32(0.5)
            g.create_dataset("d", data=np.arange(6, dtype=np.float32).reshape(2, 3))
        """, arguments: [url.path])
        let r = try HDF5File.open(url)
        #expect(try r.attribute("vl", of: "/g") == .string("naïve"))
        #expect(try r.attribute("fixed", of: "/g") == .string("abc"))
        #expect(try r.attribute("i32", of: "/g") == .int(5))
        #expect(try r.attribute("f32", of: "/g") == .double(0.5))
        #expect(try r.readArray("/g/d", as: Float.self, limit: 6).values == [0, 1, 2, 3, 4, 5])
    }
}
