import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes of a file, memory-mapped (the parsers of safetensors and GGUF files
/// read tensors straight from the mapping, so no tensor is held twice), or a copy of
/// in-memory data.
final class MappedBytes: @unchecked Sendable {
    /// Why a file could not be mapped (the callers add the file's name).
    struct Failure: Error {
        let reason: String
    }

    let base: UnsafeRawPointer
    let count: Int
    private let unmap: () -> Void

    init(url: URL) throws(Failure) {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw Failure(reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(reason: "cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw Failure(reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap rejects empty files; an empty buffer gives the header check its error.
            let p = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8)
            base = UnsafeRawPointer(p)
            count = 0
            unmap = { p.deallocate() }
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw Failure(reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        count = size
        unmap = { munmap(p, size) }
    }

    init(data: Data) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 8)
        data.copyBytes(to: p.assumingMemoryBound(to: UInt8.self), count: data.count)
        base = UnsafeRawPointer(p)
        count = data.count
        unmap = { p.deallocate() }
    }

    deinit { unmap() }
}
