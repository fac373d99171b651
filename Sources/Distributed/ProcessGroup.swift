/// The processes that share one data-parallel run, and the few collectives a trainer
/// needs from them. Every process calls each collective in the same order with buffers
/// of the same size; a collective returns once every process has made its call.
///
/// `SingleProcess` is the group of a plain run: rank 0 of 1, every collective a no-op.
/// `MPIProcessGroup` is the group of a run started by `mpirun`.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, 0..<size. Rank 0 writes what the run leaves behind.
    var rank: Int { get }
    /// Processes in the run.
    var size: Int { get }
    /// Processes of the run on this machine (they share its cores).
    var localSize: Int { get }

    /// Replaces `buffer` on every process with the element-wise sum of every process's.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Replaces `values` on every process with the element-wise `op` of every process's.
    func allReduce(_ values: inout [Double], _ op: ReduceOperation)
    /// Copies rank `root`'s `buffer` into every other process's.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int)
}

/// How `allReduce` combines the processes' values.
public enum ReduceOperation: Sendable {
    case sum, min, max
}

extension ProcessGroup {
    /// Whether this is rank 0, the process that reads and writes the run's files.
    public var isRoot: Bool { rank == 0 }

    /// Copies rank `root`'s `values` into every other process's.
    public func broadcast(_ values: inout [Double], from root: Int) {
        // Doubles travel as pairs of floats' bits, so one broadcast primitive serves both.
        values.withUnsafeMutableBytes { raw in
            raw.withMemoryRebound(to: Float.self) { broadcast($0, from: root) }
        }
    }

    /// The rows `0..<rows` of a batch that this process computes: contiguous shares that
    /// differ in size by at most one row, in rank order.
    public func share(ofRows rows: Int) -> Range<Int> {
        (rows * rank / size)..<(rows * (rank + 1) / size)
    }
}

/// A run of one process: rank 0 of 1; every collective leaves its buffer as it is.
public final class SingleProcess: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allReduce(_ values: inout [Double], _ op: ReduceOperation) {}
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) {}
}
