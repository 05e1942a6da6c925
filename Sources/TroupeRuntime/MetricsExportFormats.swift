import Foundation

// The bytes of the two metric formats people read outside Troupe: TensorBoard's event files and
// Prometheus's text exposition. Pure code (no I/O); the sinks in MetricsExportSinks.swift write them.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord framing uses.
package enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    package static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord stores CRCs masked: a CRC of data that itself holds CRCs would otherwise be weak.
    package static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// TensorBoard event files: TFRecord records, each one `tensorflow.Event` protobuf. Only the fields a
/// scalar summary needs are encoded, by hand (five fields do not pay for a protobuf dependency and
/// generated code): Event { double wall_time = 1; int64 step = 2; string file_version = 3;
/// Summary summary = 5 }, Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }.
package enum TensorBoardEvents {
    /// The version string TensorBoard expects in a file's first event.
    package static let fileVersion = "brain.Event:2"

    /// TFRecord framing: length (u64 LE), masked CRC-32C of the length bytes, data, masked CRC-32C of the data.
    package static func record(_ data: [UInt8]) -> [UInt8] {
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(CRC32C.masked(CRC32C.checksum(length))) + data + littleEndian(CRC32C.masked(CRC32C.checksum(data)))
    }

    /// The first event of every file: its format version.
    package static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(field: 1, wallTime)
        event.bytes(field: 3, Array(fileVersion.utf8))
        return event.bytes
    }

    /// One step's scalars, in the order given.
    package static func scalarsEvent(wallTime: Double, step: Int64, scalars: [(tag: String, value: Float)]) -> [UInt8] {
        var summary = ProtobufWriter()
        for (tag, value) in scalars {
            var v = ProtobufWriter()
            v.bytes(field: 1, Array(tag.utf8))
            v.float(field: 2, value)
            summary.bytes(field: 1, v.bytes)
        }
        var event = ProtobufWriter()
        event.double(field: 1, wallTime)
        event.varint(field: 2, UInt64(bitPattern: step))
        event.bytes(field: 5, summary.bytes)
        return event.bytes
    }

    /// `events.out.tfevents.<unix seconds>.<host>`: the name TensorBoard looks for in a log directory.
    /// TensorBoard's own writers' pattern; the pid keeps two writers of one run directory (`troupe run`'s
    /// evaluations beside its learner) apart when they start in the same second.
    package static func fileName(time: Date, host: String, pid: Int32 = getpid()) -> String {
        "events.out.tfevents.\(Int(time.timeIntervalSince1970)).\(host).\(pid)"
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// The few protobuf wire types the event encoding needs.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ value: UInt64) { key(field, 0); rawVarint(value) }
    mutating func double(field: Int, _ value: Double) { key(field, 1); bytes += TensorBoardEvents.littleEndian(value.bitPattern) }
    mutating func bytes(field: Int, _ value: [UInt8]) { key(field, 2); rawVarint(UInt64(value.count)); bytes += value }
    mutating func float(field: Int, _ value: Float) { key(field, 5); bytes += TensorBoardEvents.littleEndian(value.bitPattern) }
}

/// Prometheus text exposition format 0.0.4, as node-exporter's textfile collector reads it: no
/// timestamps, one HELP and TYPE line per family, families in name order.
package enum PrometheusText {
    package enum MetricType: String { case gauge, counter }

    package struct Sample: Equatable {
        package var labels: [(name: String, value: String)]
        package var value: Double
        package init(labels: [(name: String, value: String)], value: Double) { self.labels = labels; self.value = value }
        package static func == (a: Sample, b: Sample) -> Bool {
            a.value.bitPattern == b.value.bitPattern && a.labels.map(\.name) == b.labels.map(\.name) && a.labels.map(\.value) == b.labels.map(\.value)
        }
    }

    package struct Family: Equatable {
        package var name: String
        package var type: MetricType
        package var help: String
        package var samples: [Sample]
        package init(name: String, type: MetricType, help: String, samples: [Sample]) {
            self.name = name; self.type = type; self.help = help; self.samples = samples
        }
    }

    /// `troupe_` and the metric's name made valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`): `/` and every other
    /// character outside the set become `_`, `@` becomes `_at_` (`eval/pass@1` → `troupe_eval_pass_at_1`).
    package static func metricName(_ raw: String) -> String {
        var name = "troupe_"
        for scalar in raw.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", ":": name.unicodeScalars.append(scalar)
            case "@": name += "_at_"
            default: name += "_"
            }
        }
        return name
    }

    /// The exposition text of `families`, sorted by name.
    package static func render(_ families: [Family]) -> String {
        var text = ""
        for family in families.sorted(by: { $0.name < $1.name }) {
            text += "# HELP \(family.name) \(escapeHelp(family.help))\n# TYPE \(family.name) \(family.type.rawValue)\n"
            for sample in family.samples {
                text += family.name
                if !sample.labels.isEmpty {
                    text += "{" + sample.labels.map { "\($0.name)=\"\(escapeLabelValue($0.value))\"" }.joined(separator: ",") + "}"
                }
                text += " " + value(sample.value) + "\n"
            }
        }
        return text
    }

    /// Go's float syntax, which the format uses: `NaN`, `+Inf`, `-Inf`, else the shortest decimal.
    package static func value(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeLabelValue(_ s: String) -> String {
        escapeHelp(s).replacingOccurrences(of: "\"", with: "\\\"")
    }
}
