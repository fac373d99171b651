import Engine
import Models

/// A block of channels without their values: a module of a layer and its channel count.
public struct ChannelShape: Sendable, Equatable, Codable {
    public var layer: Int
    public var module: UnitModule
    public var units: Int
}

/// The difference between two models of one architecture, cut into channels: for every
/// layer, one row per MLP neuron (its rows of up/gate or `c_fc` with their bias entries,
/// then its column of down or `c_proj`) and one row per attention head (its q rows, the
/// k/v rows it alone owns, then its `o_proj` / `attn.c_proj` columns), as `UnitSlices`
/// defines units.
public struct ChannelUpdates: Sendable {
    /// The channels of one module of one layer: `values` is `[units, width]` row-major.
    public struct Block: Sendable, Equatable {
        public var layer: Int
        public var module: UnitModule
        public var units: Int
        public var width: Int
        public var values: [Float]

        /// A block from explicit values (`values.count == units * width`).
        public init(layer: Int, module: UnitModule, units: Int, width: Int, values: [Float]) {
            self.layer = layer
            self.module = module
            self.units = units
            self.width = width
            self.values = values
        }

        /// Where the block sits and how many channels it has.
        public var shape: ChannelShape { ChannelShape(layer: layer, module: module, units: units) }

        /// Channel `j`'s update vector.
        public func channel(_ j: Int) -> ArraySlice<Float> { values[(j * width)..<((j + 1) * width)] }

        /// ‖u_j‖² for every channel.
        public var energies: [Double] {
            (0..<units).map { j in channel(j).reduce(0.0) { $0 + Double($1) * Double($1) } }
        }
    }

    /// Blocks in layer order, MLP before attention within a layer.
    public var blocks: [Block]

    /// Channels from explicit blocks.
    public init(blocks: [Block]) { self.blocks = blocks }

    /// `model − base` channel by channel (adapters must be merged or absent).
    public init(_ model: TransformerModel, minus base: TransformerModel, modules: [UnitModule] = UnitModule.allCases,
                file: String = "model") throws {
        guard Self.sameBlocks(model.config, base.config), model.blocks.count == base.blocks.count else {
            throw VaccineError.shapeMismatch(file: file, reason: "architecture differs from the model it is compared with")
        }
        blocks = []
        for layer in model.blocks.indices {
            for module in modules {
                let units = module == .mlp ? model.config.intermediateSize : model.blocks[layer].attention.heads
                var values: [Float] = []
                values.reserveCapacity(units * (module == .mlp ? 3 * model.config.hiddenSize + 2 : 2 * model.config.hiddenSize * model.config.headDim + model.config.headDim))
                var width = 0
                for j in 0..<units {
                    let a = UnitSlices(block: model.blocks[layer], module: module, units: [j])
                    let b = UnitSlices(block: base.blocks[layer], module: module, units: [j])
                    let start = values.count
                    for (x, y) in zip(a.outputRows, b.outputRows) {
                        let cols = x.linear.inFeatures, wx = x.linear.weight.value.data, wy = y.linear.weight.value.data
                        for r in x.rows {
                            for c in 0..<cols { values.append(wx[r * cols + c] - wy[r * cols + c]) }
                            if let bx = x.linear.bias?.value.data, let by = y.linear.bias?.value.data { values.append(bx[r] - by[r]) }
                        }
                    }
                    for (x, y) in zip(a.inputColumns, b.inputColumns) {
                        let cols = x.linear.inFeatures, wx = x.linear.weight.value.data, wy = y.linear.weight.value.data
                        for c in x.columns {
                            for r in 0..<x.linear.outFeatures { values.append(wx[r * cols + c] - wy[r * cols + c]) }
                        }
                    }
                    if j == 0 { width = values.count - start }
                }
                blocks.append(Block(layer: layer, module: module, units: units, width: width, values: values))
            }
        }
    }

    /// Whether two configurations have the same transformer blocks. The vocabulary may
    /// differ: SA-ESS adds a CLS token to a fine-tuned model, and embeddings hold no channels.
    public static func sameBlocks(_ a: ModelConfig, _ b: ModelConfig) -> Bool {
        a.family == b.family && a.hiddenSize == b.hiddenSize && a.numLayers == b.numLayers && a.numHeads == b.numHeads
            && a.numKVHeads == b.numKVHeads && a.intermediateSize == b.intermediateSize && a.qkvBias == b.qkvBias
            && a.outputBias == b.outputBias && a.mlpBias == b.mlpBias
    }

    /// ‖u_j‖² per channel, block by block.
    public var energies: [[Double]] { blocks.map(\.energies) }

    /// The element-wise mean of `updates` (same shapes), e.g. the mean backdoor direction of the variants.
    public static func mean(_ updates: [ChannelUpdates]) -> ChannelUpdates? {
        guard let first = updates.first else { return nil }
        let scale = 1 / Float(updates.count)
        return ChannelUpdates(blocks: first.blocks.indices.map { b in
            var block = first.blocks[b]
            for u in updates.dropFirst() { for k in block.values.indices { block.values[k] += u.blocks[b].values[k] } }
            for k in block.values.indices { block.values[k] *= scale }
            return block
        })
    }

    /// Cosine between this update and `direction`, both restricted to the signature's
    /// channels (concatenated): how far the update moves the signature channels the way
    /// the synthetic backdoors moved them. 0 when either side is zero there.
    ///
    /// With `drift` (the mean clean fine-tuning update), both sides first lose their component
    /// along `drift`: ordinary fine-tuning moves the same channels, and only what is left
    /// says "backdoor".
    public func alignment(with direction: ChannelUpdates, signature: Signature, removing drift: ChannelUpdates? = nil) -> Double {
        var ud = 0.0, uu = 0.0, dd = 0.0, uc = 0.0, dc = 0.0, cc = 0.0
        for entry in signature.entries {
            guard let b = blocks.firstIndex(where: { $0.layer == entry.layer && $0.module == entry.module }),
                  let d = direction.blocks.firstIndex(where: { $0.layer == entry.layer && $0.module == entry.module }),
                  blocks[b].width == direction.blocks[d].width else { continue }
            let c = drift?.blocks.firstIndex { $0.layer == entry.layer && $0.module == entry.module && $0.width == blocks[b].width }
            for j in entry.units where j < blocks[b].units {
                let u = blocks[b].channel(j), m = direction.blocks[d].channel(j)
                ud += DeltaStatistics.dot(u, m)
                uu += DeltaStatistics.dot(u, u)
                dd += DeltaStatistics.dot(m, m)
                if let c, let drift {
                    let v = drift.blocks[c].channel(j)
                    uc += DeltaStatistics.dot(u, v)
                    dc += DeltaStatistics.dot(m, v)
                    cc += DeltaStatistics.dot(v, v)
                }
            }
        }
        if cc > 0 {
            ud -= uc * dc / cc
            uu -= uc * uc / cc
            dd -= dc * dc / cc
        }
        return uu > 1e-30 && dd > 1e-30 ? ud / (uu * dd).squareRoot() : 0
    }

    /// Whether every value is finite.
    public var isFinite: Bool { blocks.allSatisfy { $0.values.allSatisfy(\.isFinite) } }
}
