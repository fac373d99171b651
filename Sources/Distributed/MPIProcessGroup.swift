import CMPI
import Foundation

/// The processes `mpirun` (or a Slurm step with PMIx) started: MPI's world communicator.
///
/// MPI is initialised only when the environment shows such a launch, so a plain
/// `safetune train` never touches the library. One process has one group; `finish()` or
/// `abort(_:)` ends it.
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let localSize: Int
    private let world: MPI_Comm

    /// Whether this process was started by an MPI launcher (Open MPI's `mpirun`, or PMIx).
    public static var launched: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    /// The group of this launch; nil when the process was not started by an MPI launcher.
    /// Initialises MPI (once per process).
    public static func joined() -> MPIProcessGroup? {
        guard launched else { return nil }
        return MPIProcessGroup()
    }

    private init() {
        var initialised: Int32 = 0
        MPI_Initialized(&initialised)
        if initialised == 0 { MPI_Init(nil, nil) }
        world = safetune_mpi_comm_world()
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        self.rank = Int(rank)
        self.size = Int(size)
        // The processes that share this machine's memory, hence its cores.
        var local: MPI_Comm? = nil
        var localSize: Int32 = 1
        if MPI_Comm_split_type(world, safetune_mpi_comm_type_shared(), rank, safetune_mpi_info_null(), &local) == MPI_SUCCESS {
            MPI_Comm_size(local, &localSize)
            MPI_Comm_free(&local)
        }
        self.localSize = Int(max(1, localSize))
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, let base = buffer.baseAddress, !buffer.isEmpty else { return }
        MPI_Allreduce(safetune_mpi_in_place(), base, Int32(buffer.count), safetune_mpi_float(), safetune_mpi_sum(), world)
    }

    public func allReduce(_ values: inout [Double], _ op: ReduceOperation) {
        guard size > 1, !values.isEmpty else { return }
        let mpiOp: MPI_Op
        switch op {
        case .sum: mpiOp = safetune_mpi_sum()
        case .min: mpiOp = safetune_mpi_min()
        case .max: mpiOp = safetune_mpi_max()
        }
        let count = Int32(values.count)
        values.withUnsafeMutableBufferPointer { buffer in
            _ = MPI_Allreduce(safetune_mpi_in_place(), buffer.baseAddress, count, safetune_mpi_double(), mpiOp, world)
        }
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) {
        guard size > 1, let base = buffer.baseAddress, !buffer.isEmpty else { return }
        // MPI counts are 32-bit: a large buffer goes in pieces.
        let piece = Int(Int32.max / 2)
        var offset = 0
        while offset < buffer.count {
            let n = min(piece, buffer.count - offset)
            MPI_Bcast(base + offset, Int32(n), safetune_mpi_float(), Int32(root), world)
            offset += n
        }
    }

    /// Ends MPI after a run every process finished.
    public func finish() {
        var finalised: Int32 = 0
        MPI_Finalized(&finalised)
        if finalised == 0 { MPI_Finalize() }
    }

    /// Stops every process of the run at once (one process failed: the others would wait
    /// for it forever in their next collective). Does not return.
    public func abort(exitCode: Int32) -> Never {
        MPI_Abort(world, exitCode)
        exit(exitCode)
    }
}
