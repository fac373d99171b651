/// A binary min-heap: `pop` returns the smallest element. Used by BPE encoding (packed
/// rank/position keys) and BPE training (pair counts, ordered so the best pair is smallest).
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(_ v: Element) {
        items.append(v)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if !(items[i] < items[p]) { break }
            items.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && items[l] < items[m] { m = l }
            if r < n && items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return first
    }
}
