import Engine

extension TransformerModel {
    /// Packs the frozen weight of every projection in the blocks (`PackedMatrix`) and moves
    /// its float32 values out of memory (`TensorStorage.moveToFile`): a LoRA step then holds
    /// the base in `format`'s bytes. The LM head and the embeddings stay float32 (the head's
    /// fused loss reads them directly). Returns the float32 bytes moved out of memory.
    ///
    /// The model computes what a float32 model holding the packed values computes;
    /// `unpackProjections()` returns it to its own float32 weights, exactly.
    @discardableResult
    public func packFrozenProjections(_ format: PackedMatrix.Format) -> Int {
        var moved = 0
        for (path, linear) in namedLinears where path != "lm_head" && !linear.weight.requiresGrad && linear.weight.packed == nil {
            let w = linear.weight
            w.packed = PackedMatrix(w.value, format: format)
            if w.value.storage === parameterStorage {
                moved += parameterStorage.moveToFile(elements: w.value.offset..<(w.value.offset + w.value.count))
            }
        }
        return moved
    }

    /// Gives back the memory of the packed projections' float32 values that something read
    /// while they were packed (a periodic checkpoint); they are read from the file again
    /// when needed. They are frozen, so nothing written is lost.
    public func dropPackedBasePages() {
        for (_, linear) in namedLinears where linear.weight.packed != nil {
            let w = linear.weight.value
            w.storage.dropMovedPages(elements: w.offset..<(w.offset + w.count))
        }
    }

    /// Drops the packed copies: projections read the float32 weights again (read back into
    /// memory as they are used).
    public func unpackProjections() {
        for (_, linear) in namedLinears { linear.weight.packed = nil }
    }

    /// Bytes the packed copies take.
    public var packedBytes: Int {
        namedLinears.reduce(0) { $0 + ($1.1.weight.packed?.bytes ?? 0) }
    }
}
