import Foundation

/// Reference-counted, zero-initialised Float32 buffer that backs one or more tensors.
///
/// Tensors are cheap views (shape + offset) into a storage; a parameter arena is one
/// storage with many views, which keeps the optimizer a single loop.
public final class TensorStorage: @unchecked Sendable {
    /// First element. Valid for `count` elements for the storage's whole lifetime.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of Float32 elements.
    public let count: Int

    /// Allocates `count` floats, set to zero. Memory that cannot be had ends the process
    /// through `OutOfMemory.handler` (one line naming the size and the limit), where the
    /// Swift allocator would abort with a backtrace.
    ///
    /// Buffers of `mappedBytes` or more are mapped pages of their own, which come zeroed
    /// and go back to the system when freed. From malloc's heap they would not: glibc
    /// raises its mmap threshold to the largest block freed (up to 32 MiB), after which a
    /// run whose batch shapes vary keeps every freed activation's pages resident.
    public init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        if overflow { OutOfMemory.handler(.max) }
        if bytes >= Self.mappedBytes {
            let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let raw, raw != MAP_FAILED else { OutOfMemory.handler(bytes) }
            pointer = raw.bindMemory(to: Float.self, capacity: count)
        } else {
            guard let raw = malloc(bytes) else { OutOfMemory.handler(bytes) }
            pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
        }
    }

    /// Size from which a buffer is mapped instead of taken from malloc (1 MiB).
    static let mappedBytes = 1 << 20

    /// Byte ranges `moveToFile` moved, page-aligned.
    private var movedBytes: [Range<Int>] = []

    /// Moves the values of `elements` out of memory into a private mapping of a deleted
    /// temporary file, at the same addresses: they read and write as before, but hold no
    /// memory until read again. Only the whole pages inside the range move, and only in a
    /// mapped buffer. Returns the bytes moved (0 when none could be).
    ///
    /// A LoRA run with a packed base (`PackedMatrix`) keeps its frozen weights' float32
    /// values this way: untouched while it trains, exact for what reads them afterwards.
    @discardableResult
    public func moveToFile(elements: Range<Int>, directory: String = FileManager.default.temporaryDirectory.path) -> Int {
        precondition(elements.lowerBound >= 0 && elements.upperBound <= count, "moveToFile: \(elements) outside \(count) elements")
        let size = MemoryLayout<Float>.stride
        let pages = Self.wholePages(in: (elements.lowerBound * size)..<(elements.upperBound * size))
        let start = pages.lowerBound, end = pages.upperBound
        guard max(count, 1) * size >= Self.mappedBytes, end > start else { return 0 }
        var name = Array("\(directory)/safetune-weights-XXXXXX".utf8CString)
        let fd = mkstemp(&name)
        guard fd >= 0 else { return 0 }
        unlink(name)
        defer { close(fd) }
        let region = UnsafeMutableRawPointer(pointer) + start
        var written = 0
        while written < end - start {
            let n = write(fd, region + written, end - start - written)
            if n <= 0 { return 0 }
            written += n
        }
        // Replaces the anonymous pages in place; the file's pages are read back on demand.
        guard mmap(region, end - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == region else {
            OutOfMemory.handler(end - start)
        }
        movedBytes.append(start..<end)
        return end - start
    }

    /// Gives back the memory of the pages of `elements` that `moveToFile` moved and that
    /// something read since (a save): they are read from the file again when next used.
    /// A value written since would return to what the file holds, so only frozen values are
    /// dropped. Elements that were not moved stay as they are.
    public func dropMovedPages(elements: Range<Int>) {
        let size = MemoryLayout<Float>.stride
        let bytes = (elements.lowerBound * size)..<(elements.upperBound * size)
        for moved in movedBytes where moved.overlaps(bytes) {
            let pages = Self.wholePages(in: moved.clamped(to: bytes))
            if !pages.isEmpty { madvise(UnsafeMutableRawPointer(pointer) + pages.lowerBound, pages.count, MADV_DONTNEED) }
        }
    }

    /// The whole pages inside a byte range (empty when none fits).
    static func wholePages(in bytes: Range<Int>) -> Range<Int> {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (bytes.lowerBound + page - 1) / page * page, end = bytes.upperBound / page * page
        return start..<max(start, end)
    }

    deinit {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.mappedBytes { munmap(pointer, bytes) } else { free(pointer) }
    }
}

/// What happens when a tensor's memory cannot be allocated (an address-space limit such as
/// `ulimit -v`, a full machine): by default one line on standard error, `error: out of
/// memory: …` with the size asked for, the limit in force and the process's size, then exit
/// status 2 (`fail`). Tensors are where nearly all of a run's memory goes, so this is where a run
/// that does not fit ends, rather than in a crash.
public enum OutOfMemory {
    nonisolated(unsafe) public static var handler: (Int) -> Never = { bytes in fail(message(bytes: bytes)) }

    /// Writes `error: <message>` and ends the process with status 2 at once, without the
    /// exit handlers: near an address-space limit, the matrix library's own shutdown can
    /// wait forever for memory.
    public static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        fflush(nil)  // every output stream
        _exit(2)
    }

    /// "out of memory: a tensor of N MiB could not be allocated (…limit…; this process
    /// already maps M MiB); …".
    public static func message(bytes: Int) -> String {
        func mib(_ n: UInt64) -> String { n < 1 << 20 ? "\(n) bytes" : "\(n >> 20) MiB" }
        var limits: [String] = []
        var r = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max { limits.append("address-space limit (ulimit -v) \(mib(UInt64(r.rlim_cur)))") }
        if getrlimit(Int32(RLIMIT_DATA.rawValue), &r) == 0, r.rlim_cur != rlim_t.max { limits.append("data limit (ulimit -d) \(mib(UInt64(r.rlim_cur)))") }
        if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
           let max = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) { limits.append("cgroup memory.max \(mib(max))") }
        if limits.isEmpty { limits.append("physical memory \(mib(ProcessInfo.processInfo.physicalMemory))") }
        let mapped = BLASBuffers.mappedBytes().map { "; this process already maps \(mib($0))" } ?? ""
        let size = bytes == .max ? "more than the address space" : mib(UInt64(bytes))
        return "out of memory: a tensor of \(size) could not be allocated (\(limits.joined(separator: ", "))\(mapped)); "
            + "give the process more memory, or train with smaller batches, shorter sequences or LoRA"
    }
}

/// An n-dimensional Float32 array: row-major, contiguous, a view into a `TensorStorage`.
///
/// `Tensor` is a value type whose elements live in shared storage: copying a `Tensor`
/// copies the view, not the numbers (use `copy()` for that). Kernels write into
/// preallocated outputs through `data`.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Backing buffer, possibly shared with other views.
    public let storage: TensorStorage
    /// Index of this view's first element within `storage`.
    public let offset: Int
    /// Number of elements (product of `shape`).
    public let count: Int

    /// A view of `storage` starting at `offset`.
    public init(shape: [Int], storage: TensorStorage, offset: Int = 0) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= storage.count, "view \(shape) at \(offset) exceeds storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.offset = offset
        self.count = n
    }

    /// A new zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.elementCount(shape)))
    }

    /// A new tensor holding `scalars` (row-major).
    public init(shape: [Int], scalars: [Float]) {
        precondition(Tensor.elementCount(shape) == scalars.count, "shape \(shape) needs \(Tensor.elementCount(shape)) scalars, got \(scalars.count)")
        self.init(zeros: shape)
        scalars.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(zeros: shape)
        if value != 0 { fill(value) }
    }

    /// Product of the dimensions; 1 for a scalar.
    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1) { precondition($1 >= 0, "negative dimension in \(shape)"); return $0 * $1 }
    }

    /// Pointer to the first element of this view.
    public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// The last dimension (1 for a scalar).
    public var lastDim: Int { shape.last ?? 1 }
    /// Number of rows when viewed as a matrix `[count / lastDim, lastDim]`.
    public var rows: Int { lastDim == 0 ? 0 : count / lastDim }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage, offset: offset)
    }

    /// Rows `range` of the outermost dimension, as a view.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(!shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0], "slice \(range) out of \(shape)")
        let inner = shape.isEmpty ? 1 : count / max(shape[0], 1)
        var s = shape
        s[0] = range.count
        return Tensor(shape: s, storage: storage, offset: offset + range.lowerBound * inner)
    }

    /// The elements as an array (copies).
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// A deep copy in new storage.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        data.update(repeating: value, count: count)
    }

    /// Copies the elements of `other` (same element count) into this view.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Element at a flat (row-major) index.
    public subscript(flat index: Int) -> Float {
        get { data[index] }
        nonmutating set { data[index] = newValue }
    }

    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", …" : "")]"
    }
}
