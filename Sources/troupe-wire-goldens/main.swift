import Foundation
import SwiftProtobuf
import TroupeProto

// The Swift side of the wire conformance check (docs/PROTOCOL.md §11, Tests/Fixtures/wire-goldens):
//   troupe-wire-goldens write DIR                 the golden Envelopes: NAME.pb (swift-protobuf binary,
//                                                 deterministic map order) and NAME.txt (text format)
//   troupe-wire-goldens verify DIR                DIR holds exactly what `write` writes, byte for byte
//   troupe-wire-goldens check DIR RUNTIME [--optional-as-implicit]
//                                                 NAME.RUNTIME.pb, re-encoded by another runtime, decodes to
//                                                 a message equal to the golden one (unknown fields included)
//                                                 with the same text format (so -0.0 stays -0.0). With
//                                                 --optional-as-implicit (protobuf-c 1.4): a present but empty
//                                                 optional string may come back absent, and floats compare as
//                                                 numbers (protobuf-c writes no zero, so -0.0 comes back +0.0).
// Exit status 0 when everything holds, 1 naming every file that does not, 2 for a usage error.

func fail(_ message: String, status: Int32 = 1) -> Never {
    try? FileHandle.standardError.write(contentsOf: Data("troupe-wire-goldens: \(message)\n".utf8))
    exit(status)
}

func encoded(_ message: Troupe_V1_Envelope) throws -> Data {
    var options = BinaryEncodingOptions()
    options.useDeterministicOrdering = true
    return try message.serializedData(options: options)
}

/// protobuf-c 1.4 (Debian 12) has no proto3 `optional`: its code is generated from the .proto files
/// with `optional` dropped, so an optional string that is present but empty comes back absent.
func droppingEmptyOptionals(_ envelope: Troupe_V1_Envelope) -> Troupe_V1_Envelope {
    var e = envelope
    switch e.body {
    case .lease(var lease):
        for i in lease.prompts.indices where lease.prompts[i].hasReferenceAnswer && lease.prompts[i].referenceAnswer.isEmpty {
            lease.prompts[i].clearReferenceAnswer()
        }
        e.body = .lease(lease)
    case .groupSubmit(var group):
        for i in group.samples.indices where group.samples[i].hasExtractedAnswer && group.samples[i].extractedAnswer.isEmpty {
            group.samples[i].clearExtractedAnswer()
        }
        e.body = .groupSubmit(group)
    default: break
    }
    return e
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else {
    fail("usage: troupe-wire-goldens write DIR | verify DIR | check DIR RUNTIME [--optional-as-implicit]", status: 2)
}
let directory = URL(fileURLWithPath: arguments[1])
var problems: [String] = []

do {
    switch arguments[0] {
    case "write":
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, message) in Goldens.all {
            try encoded(message).write(to: directory.appendingPathComponent(name + ".pb"))
            try Data(message.textFormatString().utf8).write(to: directory.appendingPathComponent(name + ".txt"))
        }
        print("troupe-wire-goldens: wrote \(Goldens.all.count) messages to \(directory.path)")

    case "verify":
        let expected = Set(Goldens.all.flatMap { [$0.0 + ".pb", $0.0 + ".txt"] })
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".pb") || $0.hasSuffix(".txt") }.filter { $0.split(separator: ".").count == 2 })
        for extra in present.subtracting(expected).sorted() { problems.append("\(extra): not a golden message") }
        for (name, message) in Goldens.all {
            for (file, bytes) in [(name + ".pb", try encoded(message)), (name + ".txt", Data(message.textFormatString().utf8))] {
                guard let stored = FileManager.default.contents(atPath: directory.appendingPathComponent(file).path) else {
                    problems.append("\(file): missing")
                    continue
                }
                if stored != bytes { problems.append("\(file): differs from what this build encodes (run `write` and commit)") }
            }
        }
        if problems.isEmpty { print("troupe-wire-goldens: \(Goldens.all.count) messages match \(directory.path)") }

    case "check":
        guard arguments.count >= 3 else { fail("check needs DIR and RUNTIME", status: 2) }
        let runtime = arguments[2]
        let implicitOptionals = arguments.dropFirst(3).contains("--optional-as-implicit")
        for (name, golden) in Goldens.all {
            let file = "\(name).\(runtime).pb"
            guard let bytes = FileManager.default.contents(atPath: directory.appendingPathComponent(file).path) else {
                problems.append("\(file): missing")
                continue
            }
            let decoded: Troupe_V1_Envelope
            do { decoded = try Troupe_V1_Envelope(serializedBytes: bytes) } catch {
                problems.append("\(file): does not decode: \(error)")
                continue
            }
            let expected = implicitOptionals ? droppingEmptyOptionals(golden) : golden
            // == compares floats as IEEE numbers (-0 equals +0); the text format keeps the sign, and a runtime
            // that keeps every value must give the same text.
            if decoded != expected || (!implicitOptionals && decoded.textFormatString() != expected.textFormatString()) {
                problems.append("\(file): decodes to a different message\n--- expected\n\(expected.textFormatString())--- got\n\(decoded.textFormatString())")
            }
        }
        if problems.isEmpty { print("troupe-wire-goldens: \(runtime): \(Goldens.all.count) re-encoded messages decode equal to the goldens") }

    default:
        fail("unknown command \(arguments[0]) (write, verify, check)", status: 2)
    }
} catch {
    fail("\(error)")
}
if !problems.isEmpty { fail(problems.joined(separator: "\n")) }
