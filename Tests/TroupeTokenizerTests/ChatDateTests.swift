import Testing
import TroupeTokenizer

/// The date a chat template's strftime_now writes: what `task.chat_date` and `--chat-date` accept, and what
/// they refuse (conversions are checked against Python's strftime in the jinja2 goldens).
@Suite struct ChatDateTests {
    @Test(arguments: [
        ("2024-07-26", "2024-07-26T00:00:00"),
        ("2024-07-26T09:05", "2024-07-26T09:05:00"),
        ("2024-07-26T09:05:03", "2024-07-26T09:05:03"),
        ("2024-07-26 23:59:59", "2024-07-26T23:59:59"),
        ("2000-02-29", "2000-02-29T00:00:00"),
        ("0001-01-01", "0001-01-01T00:00:00"),
    ])
    func acceptsISODatesWithAnOptionalTime(text: String, normalised: String) throws {
        #expect(try ChatDate(parsing: text).description == normalised)
    }

    @Test(arguments: [
        ("", "expected a date YYYY-MM-DD"),
        ("today", "expected a date YYYY-MM-DD"),
        ("2024-7-26", "expected a date YYYY-MM-DD"),
        ("26/07/2024", "expected a date YYYY-MM-DD"),
        ("2024-07-26Z", "expected a date YYYY-MM-DD"),
        ("２０２４-07-26", "expected a date YYYY-MM-DD"),
        ("2024-07-26T9:05", "expected a time HH:MM or HH:MM:SS after the date"),
        ("2024-07-26T09:05:03+02:00", "expected a time HH:MM or HH:MM:SS after the date"),
        ("2024-07-26T", "expected a time HH:MM or HH:MM:SS after the date"),
        ("0000-01-01", "the year must be in 1 … 9999"),
        ("2024-13-01", "the month must be in 01 … 12"),
        ("2023-02-29", "2023-02 has no day 29"),
        ("1900-02-29", "1900-02 has no day 29"),
        ("2024-04-31", "2024-04 has no day 31"),
        ("2024-04-00", "2024-04 has no day 0"),
        ("2024-07-26T24:00", "the time must be in 00:00:00 … 23:59:59"),
        ("2024-07-26T12:60:00", "the time must be in 00:00:00 … 23:59:59"),
    ])
    func refusesAnythingElseSayingWhy(text: String, problem: String) {
        #expect(throws: ChatDateError(text: text, problem: problem)) { try ChatDate(parsing: text) }
    }

    @Test func aFormatEndingInAPercentSignIsRefused() throws {
        #expect(throws: ChatDateError(text: "%Y %", problem: "the format ends in an unfinished %")) {
            try ChatDate(parsing: "2024-07-26").formatted("%Y %")
        }
        #expect(throws: ChatDateError(text: "%-", problem: "the format ends in an unfinished %")) {
            try ChatDate(parsing: "2024-07-26").formatted("%-")
        }
    }
}
