import Synchronization

/// Byte-pair encoding of one pre-tokenized word (Sennrich et al. 2016, "Neural Machine Translation of
/// Rare Words with Subword Units"; byte-level as in GPT-2, or from characters as in SentencePiece-style
/// vocabularies): start from one symbol per byte (or character) and merge
/// adjacent pairs, always the pair whose merge rule comes first in the merges list, the leftmost of
/// equal pairs first, until no adjacent pair has a rule.
///
/// This is Hugging Face's `Word::merge_all` (a priority queue keyed by rank, then position), which is
/// O(n log n) in the word's length, so long runs without spaces stay fast.
struct BPEMerges: Sendable {
    /// The id of each byte's one-character token.
    let byteTokenIds: [Int32]
    /// (left id, right id) packed into 64 bits → (rank, merged id) packed the same way.
    private let rules: [UInt64: UInt64]

    init(byteTokenIds: [Int32], rules: [(left: Int32, right: Int32, merged: Int32)]) {
        self.byteTokenIds = byteTokenIds
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(rules.count)
        // Later duplicates win, as in Hugging Face's HashMap built from the enumerated list.
        for (rank, rule) in rules.enumerated() {
            table[Self.pack(rule.left, rule.right)] = Self.pack(Int32(rank), rule.merged)
        }
        self.rules = table
    }

    @inline(__always)
    private static func pack(_ high: Int32, _ low: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: high)) << 32 | UInt64(UInt32(bitPattern: low))
    }

    @inline(__always)
    private func rule(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        guard let packed = rules[Self.pack(left, right)] else { return nil }
        return (Int32(truncatingIfNeeded: packed >> 32), Int32(truncatingIfNeeded: packed))
    }

    /// The token ids of one word given as UTF-8 bytes.
    func encode(_ word: ArraySlice<UInt8>) -> [Int32] {
        merge(word.map { byteTokenIds[Int($0)] })
    }

    /// The merged token ids of one word's initial symbols.
    func merge(_ initial: [Int32]) -> [Int32] {
        var symbols = initial
        let count = symbols.count
        guard count > 1 else { return symbols }
        // A doubly linked list over the initial positions; a merged-away symbol gets id -1.
        var previous = [Int](0..<count).map { $0 - 1 }
        var next = [Int](1...count).map { $0 == count ? -1 : $0 }
        var queue = MinHeap()
        for position in 0..<(count - 1) {
            if let rule = rule(symbols[position], symbols[position + 1]) {
                queue.push(rank: rule.rank, position: position)
            }
        }
        while let (rank, position) = queue.pop() {
            guard symbols[position] >= 0, next[position] >= 0 else { continue }
            let right = next[position]
            // Skip entries made stale by earlier merges: the pair must still carry this rank.
            guard let rule = rule(symbols[position], symbols[right]), rule.rank == rank else { continue }
            symbols[position] = rule.merged
            symbols[right] = -1
            let after = next[right]
            next[position] = after
            if after >= 0 { previous[after] = position }
            if previous[position] >= 0, let left = self.rule(symbols[previous[position]], rule.merged) {
                queue.push(rank: left.rank, position: previous[position])
            }
            if after >= 0, let following = self.rule(rule.merged, symbols[after]) {
                queue.push(rank: following.rank, position: position)
            }
        }
        return symbols.filter { $0 >= 0 }
    }
}

/// A binary min-heap of (rank, position) packed into one integer, so ties in rank go to the leftmost.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(rank: Int32, position: Int) {
        items.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(position))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left] < items[smallest] { smallest = left }
                if right < items.count && items[right] < items[smallest] { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (Int32(truncatingIfNeeded: top >> 32), Int(top & 0xFFFF_FFFF))
    }
}

/// Encodings of recently seen words, shared by all copies of a tokenizer and safe across threads.
/// Natural text repeats its words, so most words are looked up rather than merged.
final class WordCache: Sendable {
    private let entries = Mutex<[[UInt8]: [Int32]]>([:])
    /// Bounds memory; the cache is simply emptied when full.
    private let capacity = 100_000
    /// Longer words are rare and would bloat the cache.
    static let maximumWordLength = 128

    func lookup(_ word: [UInt8]) -> [Int32]? {
        entries.withLock { $0[word] }
    }

    func store(_ word: [UInt8], _ ids: [Int32]) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[word] = ids
        }
    }
}
