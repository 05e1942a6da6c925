/// `text` followed by spaces up to `width` characters (unchanged when it is that long already): a
/// column of the benchmarks' terminal tables.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
