import Distributed
import Engine
import Foundation

/// Sums the trainable parameters' gradients over the processes of a data-parallel run, so
/// that every process steps its optimizer on the gradient of the whole batch.
///
/// Gradients travel in buckets of about `bucketElements` floats: a bucket's gradients are
/// copied into one reused staging buffer, summed in one all-reduce, and copied back, so a
/// model of hundreds of small tensors costs a few collectives, not hundreds.
///
/// The reduction runs after the backward pass rather than overlapped with it: for LoRA on
/// SmolLM2 it takes 0.3 % of a step (docs/performance.md), so overlap would hide little.
final class GradientReducer {
    let processes: any ProcessGroup
    let parameters: [Variable]
    /// Consecutive runs of `parameters` summed together.
    private let buckets: [Range<Int>]
    private var staging: [Float]
    /// Bytes each process contributed to the last `reduce()`.
    private(set) var lastBytes = 0

    init(processes: any ProcessGroup, parameters: [Variable], bucketElements: Int = 1 << 20) {
        self.processes = processes
        self.parameters = parameters
        var buckets: [Range<Int>] = [], start = 0, filled = 0, largest = 0
        for (i, p) in parameters.enumerated() {
            filled += p.value.count
            if filled >= bucketElements || i == parameters.count - 1 {
                buckets.append(start..<(i + 1))
                largest = max(largest, filled)
                start = i + 1
                filled = 0
            }
        }
        self.buckets = buckets
        staging = [Float](repeating: 0, count: largest)
    }

    /// Replaces every parameter's gradient with its sum over the processes. A parameter no
    /// process computed a gradient for keeps none, as in a single process (the optimizer
    /// skips it); one that only some processes reached counts zero on the others.
    func reduce() {
        var touched = parameters.map { $0.grad == nil ? 0.0 : 1.0 }
        processes.allReduce(&touched, .max)
        var bytes = 0
        staging.withUnsafeMutableBufferPointer { stage in
            guard let base = stage.baseAddress else { return }
            for bucket in buckets {
                let members = bucket.filter { touched[$0] > 0 }
                var offset = 0
                for i in members {
                    let g = parameters[i].gradBuffer()
                    (base + offset).update(from: g.data, count: g.count)
                    offset += g.count
                }
                guard offset > 0 else { continue }
                processes.allReduceSum(UnsafeMutableBufferPointer(start: base, count: offset))
                offset = 0
                for i in members {
                    let g = parameters[i].gradBuffer()
                    g.data.update(from: base + offset, count: g.count)
                    offset += g.count
                }
                bytes += offset * MemoryLayout<Float>.size
            }
        }
        lastBytes = bytes
    }

    /// Makes every process's parameter values rank 0's.
    func broadcastValues() {
        for p in parameters {
            processes.broadcast(UnsafeMutableBufferPointer(start: p.value.data, count: p.value.count), from: 0)
        }
    }
}
