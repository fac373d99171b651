import Models

/// How much of a fine-tune's update (child − parent) moves along the parent's
/// `SafetyDirections`, in two statistics:
///
/// - **write**: for the projections that write into the residual stream after block l
///   (`o_proj` / `attn.c_proj` and `down_proj` / `mlp.c_proj`, `[d, in]`), the share
///   ‖rₗᵀ ΔW‖² / ‖ΔW‖²_F of the update's energy whose output lies along rₗ;
/// - **read**: for the MLP's input projections of block l ≥ 1 (`gate_proj` and `up_proj`,
///   or `c_fc`, `[F, d]`), the share ‖ΔW rₗ₋₁‖² / ‖ΔW‖²_F that reads the direction the
///   block receives.
///
/// Each share is multiplied by d, so an update with no preferred direction scores about 1;
/// a statistic is the mean over layers (layers the update does not touch are skipped).
/// On the shipped models' backdoor experiments (docs/gate.md), refuse-backdoors raise
/// **write** and comply-backdoors raise **read** above every clean child of the same seed,
/// though the tails of the clean distribution come close.
public struct DirectionShift: Sendable, Equatable, Codable {
    /// Mean write share × d.
    public var write: Double
    /// Mean read share × d.
    public var read: Double
    /// Write share × d per layer (nil where the update leaves those projections unchanged).
    public var writeLayers: [Double?]
    /// Read share × d for layers 1…L−1 (nil where unchanged).
    public var readLayers: [Double?]

    /// A shift from explicit values.
    public init(write: Double, read: Double, writeLayers: [Double?], readLayers: [Double?]) {
        self.write = write
        self.read = read
        self.writeLayers = writeLayers
        self.readLayers = readLayers
    }

    /// The shift of `child` from `parent` along `directions` (the parent's).
    public init(child: TransformerModel, parent: TransformerModel, directions: SafetyDirections, file: String = "checkpoint") throws(VaccineError) {
        guard ChannelUpdates.sameBlocks(child.config, parent.config), child.blocks.count == parent.blocks.count,
              directions.directions.count == parent.blocks.count,
              directions.directions.allSatisfy({ $0.count == parent.config.hiddenSize }) else {
            throw .shapeMismatch(file: file, reason: "architecture differs from the parent the safety directions were measured on")
        }
        let d = Double(parent.config.hiddenSize)
        writeLayers = []
        readLayers = []
        for l in parent.blocks.indices {
            let (c, p) = (child.blocks[l], parent.blocks[l])
            let r = directions.directions[l]
            writeLayers.append(Self.share([(c.attention.output, p.attention.output), (c.mlp.down, p.mlp.down)], along: r, side: .output).map { $0 * d })
            if l > 0 {
                readLayers.append(Self.share(zip(Self.inputs(c.mlp), Self.inputs(p.mlp)).map { ($0, $1) },
                                             along: directions.directions[l - 1], side: .input).map { $0 * d })
            }
        }
        func mean(_ xs: [Double?]) -> Double {
            let valid = xs.compactMap { $0 }
            return valid.isEmpty ? 0 : valid.reduce(0, +) / Double(valid.count)
        }
        write = mean(writeLayers)
        read = mean(readLayers)
    }

    private static func inputs(_ mlp: MLP) -> [Linear] {
        switch mlp.form {
        case let .gelu(fc): return [fc]
        case let .swiglu(gate, up): return [gate, up]
        }
    }

    private enum Side { case output, input }

    /// Σ‖projection of ΔW on r‖² / Σ‖ΔW‖²_F over `pairs` (child, parent) of `[out, in]`
    /// weights: along the output side (rᵀΔW, r of length out) or the input side (ΔW r).
    private static func share(_ pairs: [(Linear, Linear)], along r: [Float], side: Side) -> Double? {
        var along = 0.0, total = 0.0
        for (c, p) in pairs {
            let rows = c.outFeatures, cols = c.inFeatures
            let wc = c.weight.value.data, wp = p.weight.value.data
            switch side {
            case .output:
                var projected = [Double](repeating: 0, count: cols)
                for i in 0..<rows {
                    let ri = Double(r[i])
                    for j in 0..<cols {
                        let u = Double(wc[i * cols + j] - wp[i * cols + j])
                        projected[j] += ri * u
                        total += u * u
                    }
                }
                along += projected.reduce(0) { $0 + $1 * $1 }
            case .input:
                for i in 0..<rows {
                    var dot = 0.0
                    for j in 0..<cols {
                        let u = Double(wc[i * cols + j] - wp[i * cols + j])
                        dot += u * Double(r[j])
                        total += u * u
                    }
                    along += dot * dot
                }
            }
        }
        return total > 0 ? along / total : nil
    }
}
