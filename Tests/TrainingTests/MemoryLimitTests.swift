import Checkpoints
import Foundation
import TestSupport
import Testing

/// `safetune train` on the real model under an address-space limit (`ulimit -v`) below its
/// need: one error line and exit status 2, within a minute, never a crash or a hang.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil && FileManager.default.fileExists(atPath: BaseModel.smolLM2.cachedURL().path),
                "needs the safetune binary and the fetched base model (scripts/setup)"))
struct MemoryLimitTests {
    /// 300 MiB: too little for the matrix library's buffers, refused at start. 1000 MiB: the
    /// buffers fit, the model's tensors do not (the run measured about 2.4 GiB of address
    /// space), refused while loading.
    @Test(arguments: [(300, "work buffers"), (1000, "a tensor of")])
    func trainingBelowItsMemoryNeedFailsInOneLine(limitMiB: Int, cause: String) throws {
        let files = try TestFiles()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let recipe = try files.write("recipe.yaml", """
            model: {base: smollm2, template: auto}
            data: {train: [\(root.appendingPathComponent("recipes/data/chat-benign.jsonl").path)]}
            adapters: {kind: lora, rank: 4, alpha: 8, targets: [q_proj, v_proj]}
            training: {steps: 2, batch_size: 2, seq_len: 64, seed: 1}
            eval: {every: 0, suites: []}
            safety: {gate: {enabled: false}}
            output: {dir: out, save_every: 0, report: false}

            """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // `timeout` turns a hang into status 137 (checked below) instead of a stuck suite;
        // SIGKILL, since a process stuck near its limit may not end on SIGTERM.
        process.arguments = ["-c", "ulimit -v \(limitMiB * 1024) && exec timeout -s KILL 120 \"$0\" \"$@\"",
                             try #require(BuiltBinary.safetune.url).path, "train", recipe.path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 2, "status \(process.terminationStatus): \(text)")
        let errors = text.split(separator: "\n").filter { !$0.hasPrefix("loading:") && !$0.hasPrefix("training ") }
        #expect(errors.count == 1 && errors[0].hasPrefix("error: out of memory: ") && errors[0].contains("ulimit -v") && errors[0].contains(cause), "\(text)")
    }
}
