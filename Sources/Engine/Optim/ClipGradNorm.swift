/// Scales all gradients down together so that their global L2 norm is at most `maxNorm`
/// (PyTorch's `clip_grad_norm_`: factor maxNorm / (norm + 1e-6) when the norm exceeds it).
///
/// Elements whose `updateMask` is 0 can never move, so their gradients are left out of
/// the norm. Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ params: [Variable], maxNorm: Float) -> Float {
    var total = 0.0
    for p in params {
        guard let g = p.grad?.data else { continue }
        let mask = OptimizerSupport.mask(of: p)
        for j in 0..<p.value.count {
            if let mask, mask[j] == 0 { continue }
            total += Double(g[j]) * Double(g[j])
        }
    }
    let norm = Float(total.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for p in params {
            guard let g = p.grad?.data else { continue }
            for j in 0..<p.value.count { g[j] *= factor }
        }
    }
    return norm
}
