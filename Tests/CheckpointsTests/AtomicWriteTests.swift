import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints
#if canImport(Glibc)
import Glibc
#endif

/// Kills a process in the middle of saving and checks the previous checkpoint survives.
///
/// The writer is this same test binary, started again with `childVariable` set: in that
/// mode the test below saves checkpoints in an endless loop instead of testing.
@Suite struct AtomicWriteTests {
    static let childVariable = "SAFETUNE_ATOMIC_WRITE_CHILD"
    /// About 17 MB of weights: a save takes long enough to be interrupted.
    static let config = ModelConfig(family: .gpt2, vocabSize: 4096, hiddenSize: 256, numLayers: 4, numHeads: 4,
                                    intermediateSize: 1024, maxPositions: 128)

    /// Every tensor filled with `generation`, so a mixture of two saves is detectable.
    static func checkpoint(generation: Int) -> Checkpoint {
        var weights: [String: Tensor] = [:]
        for p in ParameterLayout(config: config).parameters { weights[p.name] = Tensor(repeating: Float(generation), shape: p.shape) }
        return Checkpoint(config: config, weights: weights, provenance: Provenance(seed: Int64(generation)))
    }

    @Test func killedSaveLeavesPreviousCheckpointIntact() throws {
        if let target = ProcessInfo.processInfo.environment[Self.childVariable] {
            var generation = 1
            while true {
                try Self.checkpoint(generation: generation).write(to: URL(fileURLWithPath: target))
                generation += 1
            }
        }
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("model.h5")
        try Self.checkpoint(generation: 0).write(to: target)
        let fullSize = try #require(FileManager.default.attributesOfItem(atPath: target.path)[.size] as? Int)

        for round in 0..<3 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["--testing-library", "swift-testing", "--filter", "AtomicWriteTests"]
            child.environment = ProcessInfo.processInfo.environment.merging([Self.childVariable: target.path]) { _, new in new }
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Wait until a save is under way: a temporary file that is part-written.
            let threshold = fullSize / 4 + round * fullSize / 5
            var partial: Int? = nil
            let deadline = Date().addingTimeInterval(120)
            while partial == nil && Date() < deadline && child.isRunning {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(".model.h5.tmp-\(child.processIdentifier)-") {
                    let size = (try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path)[.size] as? Int) ?? 0
                    if size >= threshold && size < fullSize { partial = size }
                }
                if partial == nil { usleep(200) }
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal, "the writer died before it was killed")
            let caught = try #require(partial, "round \(round): never saw a save in progress")
            // The target is a complete, verified checkpoint from one single save.
            let c = try Checkpoint.read(from: target)
            let generation = try #require(c.provenance?.seed)
            for (name, t) in c.weights {
                #expect(t.scalars.allSatisfy { $0 == Float(generation) }, "\(name) mixes saves")
            }
            print("round \(round): killed mid-save (temporary file \(caught) of \(fullSize) bytes); target holds generation \(generation)")
            // Leftover temporary files are the only trace of the interrupted save.
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasPrefix(".model.h5.tmp-") {
                try FileManager.default.removeItem(at: dir.appendingPathComponent(name))
            }
        }
    }
}
