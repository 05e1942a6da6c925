/// The integers of a comma-separated option value such as `0,1,2`, or nil when the list is empty or
/// an entry is not an integer within `range` (the caller names the option in its error).
func integerList(_ text: String, in range: ClosedRange<Int>) -> [Int]? {
    let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ $0.map(range.contains) ?? false }) else { return nil }
    return values.map { $0! }
}
