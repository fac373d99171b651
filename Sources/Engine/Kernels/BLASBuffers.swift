import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS's work buffers under an address-space limit (`ulimit -v`).
///
/// OpenBLAS takes a work buffer (128 MiB of address space in the Debian build) for each
/// call that runs at the same time, the first time that many run at once, and keeps it.
/// When that allocation fails it retries forever (`blas_memory_alloc`, OpenBLAS 0.3.21),
/// so a run that nears the limit hangs inside a matrix product instead of failing. Taking
/// the buffers at start, while the address space is still free, leaves later shortages to
/// the tensor allocator, which ends the run with a one-line error (`OutOfMemory`).
public enum BLASBuffers {
    /// Address space assumed per buffer (OpenBLAS's BUFFER_SIZE plus its page padding).
    public static let bufferBytes: UInt64 = 129 << 20

    /// With an address-space limit in force, takes `concurrency` buffers now (and returns
    /// them to OpenBLAS's pool, which keeps the memory); throws when too little of the
    /// space is left for them. Without a limit, or without OpenBLAS's allocator, does nothing.
    public static func reserveUnderAddressSpaceLimit(concurrency: Int) throws(OutOfMemoryError) {
        var r = rlimit()
        guard getrlimit(Int32(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max else { return }
        let limit = UInt64(r.rlim_cur)
        let used = mappedBytes() ?? 0
        let need = UInt64(max(concurrency, 1)) * bufferBytes
        guard used + need + (64 << 20) <= limit else {
            throw OutOfMemoryError(message: "out of memory: the matrix library needs \(need >> 20) MiB of address space for its work buffers "
                                   + "(\(concurrency) threads), and the address-space limit (ulimit -v) of \(limit >> 20) MiB leaves \((limit - min(used, limit)) >> 20) MiB; "
                                   + "give the process more memory")
        }
        guard let handle = dlopen(nil, RTLD_NOW), let alloc = dlsym(handle, "blas_memory_alloc"), let free = dlsym(handle, "blas_memory_free") else { return }
        typealias Alloc = @convention(c) (Int32) -> UnsafeMutableRawPointer?
        typealias Free = @convention(c) (UnsafeMutableRawPointer?) -> Void
        let take = unsafeBitCast(alloc, to: Alloc.self), give = unsafeBitCast(free, to: Free.self)
        let buffers = (0..<max(concurrency, 1)).map { _ in take(0) }
        buffers.forEach(give)
    }

    /// The process's mapped address space (VmSize), if known.
    static func mappedBytes() -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
              let kb = UInt64(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb << 10
    }
}

/// Memory that a run needs is not available; the message is one line.
public struct OutOfMemoryError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
