import ArgumentParser
import Checkpoints
import Engine
import Foundation

/// The `safetune` command: thin subcommands over the SafeTune libraries.
@main
struct SafeTuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safetune",
        abstract: "Fine-tune language models without losing their safety; reject backdoored checkpoints.",
        version: "0.1.0",
        subcommands: [
            BenchCommand.self,
            TrainCommand.self,
            CorpusCommand.self,
            CompareCommand.self,
            RecipeCommand.self,
            GenerateCommand.self,
            ScoreCommand.self,
            UnitsCommand.self,
            TokenizeCommand.self,
            TokenizerCommand.self,
            InspectCommand.self,
            EvalCommand.self,
            ImportCommand.self,
            ExportCommand.self,
            VerifyCommand.self,
            PurifyCommand.self,
            BackdoorExperimentCommand.self,
            SafeLoRACommand.self,
            ScanCommand.self,
            CalibrateGuardCommand.self,
        ]
    )

    /// Checkpoints come from strangers: every one is read in a helper process first, so a
    /// damaged file that crashes libhdf5 becomes an error instead of killing the command.
    static func main() {
        HDF5File.skipLibraryCleanupAtExit()
        BLASCore.restartWithSupportedKernelsIfNeeded()
        ReadIsolation.bootstrap()
        // Past a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, which kills the
        // process mid-save; ignored, the write fails with EFBIG and the save reports it.
        signal(SIGXFSZ, SIG_IGN)
        // Every core for the engine's kernels; `train` (training.threads) and `bench`
        // (--threads) set their own count.
        Parallel.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        main(nil)
    }
}
