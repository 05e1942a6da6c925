import Foundation
import Logging
import Testing
import TroupeRuntime

@Suite struct ConsoleTests {
    @Test func aConsoleLogsThroughItsHandlerWithTypedFields() {
        let handler = InMemoryLogHandler()
        let console = handler.console(role: "learner")
        console.info("listening", ["step": 3, "run": "runs/x"])
        console.warn("evicted silent actor", ["actor": "a"])
        #expect(handler.entries.map(\.level) == [.info, .warning])
        #expect(handler.entries.first?.metadata == ["step": "3", "run": "runs/x"])
    }

    @Test func consoleLinesReadAsTextOnATerminalAndAsJSONInAPipe() throws {
        let fields: Logger.Metadata = ["step": .stringConvertible(3), "ratio": .stringConvertible(0.5), "actor": .string("a")]
        let text = ConsoleLogHandler.format(role: "learner", level: .warning, message: "slow", fields: fields, terminal: true)
        #expect(text == "[learner] WARN: slow  actor=a ratio=0.5 step=3")
        let json = ConsoleLogHandler.format(role: "learner", level: .info, message: "slow", fields: fields, terminal: false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["step"] as? Int == 3)
        #expect(object["ratio"] as? Double == 0.5)
        #expect(object["actor"] as? String == "a")
        #expect(object["level"] as? String == "info" && object["role"] as? String == "learner" && object["msg"] as? String == "slow")
    }

    @Test func warningsReachTheAttachedLogStreamFromItsThreadOnly() throws {
        let stream = InMemoryLogStream(source: "learner")
        let attachment = LogStreamAttachment()
        attachment.attach(stream)
        let logger = Logger(label: "learner") { LogStreamLogHandler(label: $0, attachment: attachment) }
        logger.info("not published")
        logger.warning("published", metadata: ["actor": "a"])
        let events = stream.events(kind: "log")
        #expect(events.map(\.text) == ["published"])
        let other = Thread { logger.warning("from another thread") }
        other.start()
        while !other.isFinished { usleep(1000) }
        #expect(stream.events(kind: "log").count == 1, "the stream's socket belongs to the thread that attached it")
        #expect(events.first?.fields["actor"] == "a" && events.first?.fields["level"] == "warn")
    }
}
