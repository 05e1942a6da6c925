/// Where each value and key of a parsed document was written, by key path, so that errors found
/// after parsing (a wrong type, an unknown key, an out-of-range value) can give a line and column.
/// Recorded only when asked for (`JSONDocument.parse`): a tokenizer.json has no use for it.
public struct JSONSourceMap: Sendable {
    /// The name errors print: a file path, `--set`, …
    public let source: String
    private let text: [UInt8]
    var valueOffsets: [String: Int] = [:]
    var keyOffsets: [String: Int] = [:]
    /// Values replaced after parsing (by a `--set` override): path → where the replacement came from.
    private var replacements: [String: String] = [:]

    init(source: String, text: [UInt8]) {
        self.source = source
        self.text = text
    }

    /// An empty map: nothing has a line (a configuration built without a file).
    public init(source: String) {
        self.init(source: source, text: [])
    }

    /// Where the value at `path` starts; for a replaced value, its origin without a line.
    public func location(ofValue path: String) -> JSONLocation? {
        if let origin = replacement(covering: path) { return JSONLocation(source: origin) }
        return valueOffsets[path].map(location(atOffset:))
    }

    /// Where the key naming `path` is written (falls back to the value).
    public func location(ofKey path: String) -> JSONLocation? {
        if let origin = replacement(covering: path) { return JSONLocation(source: origin) }
        if let written = keyOffsets[path].map(location(atOffset:)) ?? location(ofValue: path) { return written }
        // A section only an override under it made (`--set section.key=v`) is named by that override.
        return replacements.keys.filter { $0.hasPrefix(path + ".") }.min().map { JSONLocation(source: replacements[$0]!) }
    }

    /// Records that the value at `path` (and everything under it) now comes from `origin`.
    public mutating func replace(_ path: String, origin: String) {
        replacements[path] = origin
    }

    private func replacement(covering path: String) -> String? {
        var prefix = Substring(path)
        while true {
            if let origin = replacements[String(prefix)] { return origin }
            guard let cut = prefix.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            prefix = prefix[..<cut]
        }
    }

    func location(atOffset offset: Int) -> JSONLocation {
        JSONSourceMap.location(in: text[...], offset: offset, source: source)
    }

    /// Line and column (1-based; the column counts characters, not bytes) of byte `offset`.
    static func location(in text: ArraySlice<UInt8>, offset: Int, source: String) -> JSONLocation {
        var line = 1, column = 1
        var index = text.startIndex
        let end = min(text.startIndex + offset, text.endIndex)
        while index < end {
            let byte = text[index]
            if byte == 0x0A { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
            index += 1
        }
        return JSONLocation(source: source, line: line, column: column)
    }
}

/// A parsed document with the positions of its keys and values.
public struct JSONDocument: Sendable {
    public var value: JSONValue
    public var sourceMap: JSONSourceMap

    public init(value: JSONValue, sourceMap: JSONSourceMap) {
        self.value = value
        self.sourceMap = sourceMap
    }

    /// Parses `data` strictly, recording positions; errors print as `source:line:column: …`.
    public static func parse(_ data: some Collection<UInt8>, source: String) throws -> JSONDocument {
        let bytes = Array(data)
        var map = JSONSourceMap(source: source, text: bytes)
        let value = try bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(buffer, source: source, recordPositions: true)
            let value = try parser.parseDocument()
            map.valueOffsets = parser.valueOffsets
            map.keyOffsets = parser.keyOffsets
            return value
        }
        return JSONDocument(value: value, sourceMap: map)
    }
}
