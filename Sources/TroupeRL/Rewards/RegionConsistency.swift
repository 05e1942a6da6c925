/// A predicted GUI location: a point or a box, in image pixels (the caller converts a model's own
/// scale, e.g. 0-1000 or normalised coordinates, before voting).
public enum RegionPrediction: Sendable, Equatable {
    case point(x: Double, y: Double)
    case box(x1: Double, y1: Double, x2: Double, y2: Double)

    /// GUI-RCPO's parser (`grpo_jsonl.py::extract_answer`): the non-negative numbers in the text;
    /// exactly 4 make a box, exactly 2 a point, anything else is unparseable (nil).
    public static func parse(_ text: String) -> RegionPrediction? {
        var numbers: [Double] = []
        var current = ""
        func flush() {
            if let value = Double(current) { numbers.append(value) }
            current = ""
        }
        for character in text {
            if character.isASCII && character.isNumber {
                current.append(character)
            } else if character == ".", !current.isEmpty, !current.contains(".") {
                current.append(character)
            } else {
                if current.hasSuffix(".") { current.removeLast() }
                flush()
            }
        }
        if current.hasSuffix(".") { current.removeLast() }
        flush()
        switch numbers.count {
        case 4: return .box(x1: numbers[0], y1: numbers[1], x2: numbers[2], y2: numbers[3])
        case 2: return .point(x: numbers[0], y: numbers[1])
        default: return nil
        }
    }
}

public struct ImageSize: Sendable, Equatable, Codable {
    public let width: Int
    public let height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// GUI-RC region voting and the GUI-RCPO region-consistency reward — Du et al., arXiv 2508.05615
/// (code: ZJU-REAL/GUI-RCPO `GUI-RC/evaluation.py`, `grpo_jsonl.py::voting_reward`).
///
/// Conventions pinned here:
/// - a point becomes a square of side `pointExpand` pixels centred on it (GUI-RC: 50 → ±25);
/// - coordinates are floored to whole pixels; a box covers pixels `[x1, x2) × [y1, y2)` after
///   clipping to the image; a box with `x2 ≤ x1` or `y2 ≤ y1`, or an unparseable prediction (nil), is
///   empty: it casts no vote and gets reward 0;
/// - every box adds one vote to each pixel it covers; `v_max` is the highest count;
/// - reward `r_i = Σ_{p∈B_i} v(p) / (v_max·|B_i|)` ∈ [1/v_max, 1];
/// - the consensus region is the set of pixels with `v = v_max`; of its 4-connected components the
///   largest by area wins (ties: the one whose first pixel in row-major order comes first), and the
///   consensus point is the centre of that component's bounding box, `((x_min + x_max)/2, …)` with
///   `x_max` exclusive.
/// The grid is compressed to the boxes' edges, which gives the same sums as a per-pixel grid.
public enum RegionConsistency {
    public struct Outcome: Sendable, Equatable {
        public let rewards: [Double]
        /// nil when no prediction covers any pixel.
        public let consensusPoint: (x: Double, y: Double)?
        public let maxVotes: Int

        public static func == (lhs: Outcome, rhs: Outcome) -> Bool {
            lhs.rewards == rhs.rewards && lhs.maxVotes == rhs.maxVotes
                && lhs.consensusPoint?.x == rhs.consensusPoint?.x && lhs.consensusPoint?.y == rhs.consensusPoint?.y
        }
    }

    struct PixelBox { let x1, y1, x2, y2: Int
        var isEmpty: Bool { x2 <= x1 || y2 <= y1 }
        var area: Int { isEmpty ? 0 : (x2 - x1) * (y2 - y1) }
    }

    public static func compute(predictions: [RegionPrediction?], imageSize: ImageSize, pointExpand: Double) throws -> Outcome {
        try compute(predictions: predictions, imageSize: imageSize, pointExpand: pointExpand, field: { "predictions[\($0)]" })
    }

    /// `field` names prediction i in errors (GroupRewards: `samples[i].region`).
    static func compute(predictions: [RegionPrediction?], imageSize: ImageSize, pointExpand: Double,
                        field: (Int) -> String) throws -> Outcome {
        guard imageSize.width > 0, imageSize.height > 0 else {
            throw AlgorithmError(field: "image_size", problem: "width and height must be > 0, got \(imageSize.width)×\(imageSize.height)")
        }
        guard pointExpand.isFinite, pointExpand >= 0 else {
            throw AlgorithmError(field: "reward.point_expand", problem: "must be a finite number ≥ 0, got \(pointExpand)")
        }
        var boxes: [PixelBox] = []
        for (index, prediction) in predictions.enumerated() {
            boxes.append(try pixelBox(prediction, imageSize: imageSize, pointExpand: pointExpand, field: field(index)))
        }
        let votingBoxes = boxes.filter { !$0.isEmpty }
        guard !votingBoxes.isEmpty else {
            return Outcome(rewards: Array(repeating: 0, count: predictions.count), consensusPoint: nil, maxVotes: 0)
        }
        let xs = Array(Set(votingBoxes.flatMap { [$0.x1, $0.x2] })).sorted()
        let ys = Array(Set(votingBoxes.flatMap { [$0.y1, $0.y2] })).sorted()
        // votes[row][column] for the cell [xs[column], xs[column+1]) × [ys[row], ys[row+1]).
        var votes = Array(repeating: Array(repeating: 0, count: xs.count - 1), count: ys.count - 1)
        for box in votingBoxes {
            for row in ys.firstIndex(of: box.y1)!..<ys.firstIndex(of: box.y2)! {
                for column in xs.firstIndex(of: box.x1)!..<xs.firstIndex(of: box.x2)! { votes[row][column] += 1 }
            }
        }
        let maxVotes = votes.flatMap { $0 }.max()!
        let rewards = boxes.map { box -> Double in
            guard !box.isEmpty else { return 0 }
            var sum = 0
            for row in ys.firstIndex(of: box.y1)!..<ys.firstIndex(of: box.y2)! {
                for column in xs.firstIndex(of: box.x1)!..<xs.firstIndex(of: box.x2)! {
                    sum += votes[row][column] * (xs[column + 1] - xs[column]) * (ys[row + 1] - ys[row])
                }
            }
            return Double(sum) / (Double(maxVotes) * Double(box.area))
        }
        return Outcome(rewards: rewards, consensusPoint: consensusPoint(votes: votes, maxVotes: maxVotes, xs: xs, ys: ys), maxVotes: maxVotes)
    }

    static func pixelBox(_ prediction: RegionPrediction?, imageSize: ImageSize, pointExpand: Double, field: String) throws -> PixelBox {
        let corners: [Double]
        switch prediction {
        case nil: return PixelBox(x1: 0, y1: 0, x2: 0, y2: 0)
        case let .point(x, y): corners = [x - pointExpand / 2, y - pointExpand / 2, x + pointExpand / 2, y + pointExpand / 2]
        case let .box(x1, y1, x2, y2): corners = [x1, y1, x2, y2]
        }
        try Check.finite(corners, field)
        // Clip in Double first so huge coordinates never overflow Int.
        func pixel(_ value: Double, limit: Int) -> Int { Int(min(max(value, 0), Double(limit)).rounded(.down)) }
        return PixelBox(x1: pixel(corners[0], limit: imageSize.width), y1: pixel(corners[1], limit: imageSize.height),
                        x2: pixel(corners[2], limit: imageSize.width), y2: pixel(corners[3], limit: imageSize.height))
    }

    /// Centre of the bounding box of the largest 4-connected component of max-vote cells.
    private static func consensusPoint(votes: [[Int]], maxVotes: Int, xs: [Int], ys: [Int]) -> (x: Double, y: Double)? {
        let rows = votes.count, columns = votes[0].count
        var seen = Array(repeating: Array(repeating: false, count: columns), count: rows)
        var best: (area: Int, x1: Int, y1: Int, x2: Int, y2: Int)?
        for startRow in 0..<rows {
            for startColumn in 0..<columns where votes[startRow][startColumn] == maxVotes && !seen[startRow][startColumn] {
                var stack = [(startRow, startColumn)]
                seen[startRow][startColumn] = true
                var area = 0
                var bounds = (x1: Int.max, y1: Int.max, x2: Int.min, y2: Int.min)
                while let (row, column) = stack.popLast() {
                    area += (xs[column + 1] - xs[column]) * (ys[row + 1] - ys[row])
                    bounds = (min(bounds.x1, xs[column]), min(bounds.y1, ys[row]), max(bounds.x2, xs[column + 1]), max(bounds.y2, ys[row + 1]))
                    for (r, c) in [(row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)]
                    where r >= 0 && r < rows && c >= 0 && c < columns && !seen[r][c] && votes[r][c] == maxVotes {
                        seen[r][c] = true
                        stack.append((r, c))
                    }
                }
                if best == nil || area > best!.area { best = (area, bounds.x1, bounds.y1, bounds.x2, bounds.y2) }
            }
        }
        guard let best else { return nil }
        return (Double(best.x1 + best.x2) / 2, Double(best.y1 + best.y2) / 2)
    }
}
