import Foundation
import Testing
import TroupeProto
import TroupeWire

/// docs/PROTOCOL.md is the published contract: every message kind, every field and every enum value
/// the code can put on the wire has its own place in it, so a new one cannot ship undocumented.
@Suite struct ProtocolDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The text under the first heading that names `` `name` ``, up to the next heading; nil when no
    /// heading names it.
    static func section(_ name: String, in document: String) -> String? {
        let lines = document.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("#") && $0.contains("`\(name)`") }) else { return nil }
        let end = lines[(start + 1)...].firstIndex(where: { $0.hasPrefix("#") }) ?? lines.endIndex
        return lines[(start + 1)..<end].joined(separator: "\n")
    }

    /// Messages and enums of the .proto files, each with its field or value names.
    static func protoDeclarations() throws -> [(kind: String, name: String, members: [String])] {
        let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Protos/troupe/v1").path)
            .filter { $0.hasSuffix(".proto") }.sorted()
        #expect(files.count >= 5)
        let opening = try Regex(#"^\s*(message|enum)\s+(\w+)\s*\{"#)
        let member = try Regex(#"^\s*(?:optional\s+|repeated\s+)?(?:map<[^>]+>\s+|[\w.]+\s+)?(\w+)\s*=\s*\d+\s*[;\[]"#)
        var declarations: [(kind: String, name: String, members: [String])] = []
        for file in files {
            var current: (kind: String, name: String, members: [String])?
            for line in try read("Protos/troupe/v1/\(file)").components(separatedBy: "\n") {
                let code = line.components(separatedBy: "//")[0]
                if let m = code.firstMatch(of: opening) {
                    current = (String(m.output[1].substring!), String(m.output[2].substring!), [])
                } else if current != nil, let m = code.firstMatch(of: member) {
                    current!.members.append(String(m.output[1].substring!))
                } else if current != nil, code.trimmingCharacters(in: .whitespaces) == "}" {
                    declarations.append(current!)
                    current = nil
                }
            }
        }
        return declarations
    }

    @Test func everyMessageKindOfTheEnvelopeHasASection() throws {
        let document = try Self.read("docs/PROTOCOL.md")
        let samples = sampleMessages()
        #expect(Set(samples.map(\.kind)) == Set(MessageKind.allCases))
        for sample in samples {
            let name = String(type(of: sample.body.message).protoMessageName.dropFirst("troupe.v1.".count))
            #expect(Self.section(name, in: document) != nil, "docs/PROTOCOL.md has no heading naming `\(name)` (\(sample.kind.rawValue))")
        }
    }

    @Test func everyMessageFieldAndEnumValueOfTheProtosIsDocumentedInItsSection() throws {
        let document = try Self.read("docs/PROTOCOL.md")
        let declarations = try Self.protoDeclarations()
        #expect(declarations.contains { $0.name == "Envelope" && $0.members.contains("checksum") && $0.members.contains("weight_source") })
        #expect(declarations.contains { $0.name == "RejectReason" && $0.members.contains("REJECT_REASON_QUARANTINED") })
        for declaration in declarations {
            guard let section = Self.section(declaration.name, in: document) else {
                Issue.record("docs/PROTOCOL.md has no heading naming the \(declaration.kind) `\(declaration.name)`")
                continue
            }
            for name in declaration.members where !section.contains("`\(name)`") {
                Issue.record("docs/PROTOCOL.md: the section of `\(declaration.name)` does not name `\(name)`")
            }
        }
    }

    /// The Swift enums, not only the .proto text: the values the code can send.
    @Test func everyRejectReasonTheCodeKnowsIsDocumented() throws {
        let document = try Self.read("docs/PROTOCOL.md")
        func protoName(_ value: some Any, prefix: String) -> String {
            let swiftName = String(describing: value)
            return prefix + swiftName.reduce(into: "") { out, c in
                if c.isUppercase { out += "_" }
                out += c.uppercased()
            }
        }
        let rejects = Self.section("RejectReason", in: document) ?? ""
        #expect(Troupe_V1_RejectReason.allCases.count == 8)
        for reason in Troupe_V1_RejectReason.allCases {
            let name = protoName(reason, prefix: "REJECT_REASON_")
            #expect(rejects.contains("`\(name)`"), "`\(name)` is not documented under `RejectReason`")
        }
        let groupRejects = Self.section("GroupRejectReason", in: document) ?? ""
        #expect(Troupe_V1_GroupRejectReason.allCases.count == 13)
        for reason in Troupe_V1_GroupRejectReason.allCases {
            let name = protoName(reason, prefix: "GROUP_REJECT_REASON_")
            #expect(groupRejects.contains("`\(name)`"), "`\(name)` is not documented under `GroupRejectReason`")
        }
    }

    @Test func theSectionFinderStopsAtTheNextHeading() {
        let text = "# A\n### `Hello`\nfield `x`\n### `Welcome`\nfield `y`\n"
        #expect(Self.section("Hello", in: text) == "field `x`")
        #expect(Self.section("Welcome", in: text) == "field `y`\n")
        #expect(Self.section("Bye", in: text) == nil)
    }
}
