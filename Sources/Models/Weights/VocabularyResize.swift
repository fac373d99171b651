import Engine

extension TransformerModel {
    /// A copy of this model whose vocabulary has `size` entries: token embeddings (and an
    /// untied LM head) gain or lose rows at the end. New rows are the mean of the existing
    /// rows, so a token added for a new special marker (the SA-ESS `[CLS]`) starts out
    /// neutral, as Hugging Face's `resize_token_embeddings` does.
    public func resizingVocabulary(to size: Int, trainable: Bool = true) throws(ModelError) -> TransformerModel {
        var config = self.config
        config.vocabSize = size
        var weights = huggingFaceWeights(sharing: true)
        let d = self.config.hiddenSize
        let tableNames = [tokenEmbedding.table.name] + (self.config.tieWordEmbeddings ? [] : ["lm_head.weight"])
        for name in tableNames {
            guard let old = weights[name] else { throw .missingWeight(name: name) }
            weights[name] = Self.resizedRows(old, rows: size, width: d)
        }
        return try TransformerModel(config: config, weights: weights, trainable: trainable)
    }

    private static func resizedRows(_ old: Tensor, rows: Int, width d: Int) -> Tensor {
        let oldRows = old.shape[0]
        let out = Tensor(zeros: [rows, d])
        let keep = min(rows, oldRows)
        out.data.update(from: old.data, count: keep * d)
        guard rows > oldRows, oldRows > 0 else { return out }
        var mean = [Float](repeating: 0, count: d)
        for r in 0..<oldRows {
            let row = old.data + r * d
            for j in 0..<d { mean[j] += row[j] }
        }
        for j in 0..<d { mean[j] /= Float(oldRows) }
        for r in oldRows..<rows { (out.data + r * d).update(from: mean, count: d) }
        return out
    }
}
