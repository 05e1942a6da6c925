/// The date and time a chat template's `strftime_now(format)` writes. Hugging Face's `apply_chat_template`
/// reads the machine's clock there; troupe takes the moment from its configuration instead, so that a
/// run's prompts (and so its weights) do not depend on the day it ran. No time zone: as Python's naive
/// `datetime.now()`, `%z` and `%Z` write nothing.
public struct ChatDate: Sendable, Equatable, CustomStringConvertible {
    public let year: Int, month: Int, day: Int
    public let hour: Int, minute: Int, second: Int

    /// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM` or `HH:MM:SS`; midnight when no time is given.
    public init(parsing text: String) throws {
        let fail = { (problem: String) in ChatDateError(text: text, problem: problem) }
        // Fixed-width decimal fields, as ISO 8601 writes them.
        func numbers(_ part: Substring, _ separator: Character, widths: [Int]) -> [Int]? {
            let pieces = part.split(separator: separator, omittingEmptySubsequences: false)
            guard pieces.count == widths.count,
                  zip(pieces, widths).allSatisfy({ $0.count == $1 && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
            return pieces.map { Int($0)! }
        }
        let timeStart = text.firstIndex { $0 == "T" || $0 == " " }
        guard let date = numbers(text[..<(timeStart ?? text.endIndex)], "-", widths: [4, 2, 2]) else {
            throw fail("expected a date YYYY-MM-DD")
        }
        var time = [0, 0, 0]
        if let timeStart {
            let clock = text[text.index(after: timeStart)...]
            guard let given = numbers(clock, ":", widths: [2, 2, 2]) ?? numbers(clock, ":", widths: [2, 2]) else {
                throw fail("expected a time HH:MM or HH:MM:SS after the date")
            }
            time = given + (given.count == 2 ? [0] : [])
        }
        guard (1...9999).contains(date[0]) else { throw fail("the year must be in 1 … 9999") }
        guard (1...12).contains(date[1]) else { throw fail("the month must be in 01 … 12") }
        guard (1...Self.daysIn(month: date[1], year: date[0])).contains(date[2]) else {
            throw fail("\(date[0])-\(Self.pad(date[1], 2)) has no day \(date[2])")
        }
        guard time[0] < 24, time[1] < 60, time[2] < 60 else { throw fail("the time must be in 00:00:00 … 23:59:59") }
        (year, month, day, hour, minute, second) = (date[0], date[1], date[2], time[0], time[1], time[2])
    }

    public var description: String {
        "\(Self.pad(year, 4))-\(Self.pad(month, 2))-\(Self.pad(day, 2))T\(Self.pad(hour, 2)):\(Self.pad(minute, 2)):\(Self.pad(second, 2))"
    }

    /// `format` as Python's `datetime.strftime` writes it on Linux (glibc, C locale), with glibc's padding
    /// flags `-` (none), `_` (spaces) and `0` (zeros). A conversion outside the supported set is an error
    /// naming it, not text passed through.
    public func formatted(_ format: String) throws -> String {
        var out = ""
        var characters = format.makeIterator()
        while let c = characters.next() {
            guard c == "%" else { out.append(c); continue }
            var flag: Character?
            var conversion = characters.next()
            if let f = conversion, "-_0".contains(f) { flag = f; conversion = characters.next() }
            guard let conversion else { throw ChatDateError(text: format, problem: "the format ends in an unfinished %") }
            out += try field(conversion, flag: flag)
        }
        return out
    }

    private func field(_ conversion: Character, flag: Character?) throws -> String {
        func number(_ value: Int, _ width: Int, _ natural: Character = "0") -> String {
            switch flag ?? natural {
            case "-": return String(value)
            case "_": return String(repeating: " ", count: max(0, width - String(value).count)) + String(value)
            default: return Self.pad(value, width)
            }
        }
        let hour12 = hour % 12 == 0 ? 12 : hour % 12
        switch conversion {
        case "Y": return number(year, 1)
        case "C": return number(year / 100, 2)
        case "y": return number(year % 100, 2)
        case "m": return number(month, 2)
        case "d": return number(day, 2)
        case "e": return number(day, 2, "_")
        case "j": return number(dayOfYear, 3)
        case "H": return number(hour, 2)
        case "k": return number(hour, 2, "_")
        case "I": return number(hour12, 2)
        case "l": return number(hour12, 2, "_")
        case "M": return number(minute, 2)
        case "S": return number(second, 2)
        case "u": return String(weekday == 0 ? 7 : weekday)
        case "w": return String(weekday)
        case "U": return number((dayOfYear + 6 - weekday) / 7, 2)
        case "W": return number((dayOfYear + 6 - (weekday + 6) % 7) / 7, 2)
        case "G": return number(isoWeek.year, 1)
        case "g": return number(isoWeek.year % 100, 2)
        case "V": return number(isoWeek.week, 2)
        case "a": return String(Self.weekdays[weekday].prefix(3))
        case "A": return Self.weekdays[weekday]
        case "b", "h": return String(Self.months[month - 1].prefix(3))
        case "B": return Self.months[month - 1]
        case "p": return hour < 12 ? "AM" : "PM"
        case "P": return hour < 12 ? "am" : "pm"
        case "F": return try formatted("%Y-%m-%d")
        case "D", "x": return try formatted("%m/%d/%y")
        case "T", "X": return try formatted("%H:%M:%S")
        case "R": return try formatted("%H:%M")
        case "r": return try formatted("%I:%M:%S %p")
        case "c": return try formatted("%a %b %e %H:%M:%S %Y")
        case "n": return "\n"
        case "t": return "\t"
        case "%": return "%"
        case "z", "Z": return ""
        default:
            throw ChatDateError(text: "%\(conversion)", problem: "is not a supported strftime conversion (docs/models.md lists them)")
        }
    }

    /// 0 = Sunday … 6 = Saturday.
    var weekday: Int { Self.weekday(year: year, dayOfYear: dayOfYear) }

    static func weekday(year: Int, dayOfYear: Int) -> Int {
        // Days since 0001-01-01, a Monday in the proleptic Gregorian calendar Python uses.
        let y = year - 1
        return (y * 365 + y / 4 - y / 100 + y / 400 + dayOfYear) % 7
    }

    var dayOfYear: Int { (1..<month).reduce(0) { $0 + Self.daysIn(month: $1, year: year) } + day }

    /// ISO 8601: weeks start on Monday; week 1 holds the year's first Thursday.
    var isoWeek: (year: Int, week: Int) {
        let isoWeekday = weekday == 0 ? 7 : weekday
        let week = (dayOfYear - isoWeekday + 10) / 7
        if week < 1 { return (year - 1, Self.isoWeeks(in: year - 1)) }
        if week > Self.isoWeeks(in: year) { return (year + 1, 1) }
        return (year, week)
    }

    /// 53 when the year starts on a Thursday, or on a Wednesday in a leap year; else 52.
    static func isoWeeks(in year: Int) -> Int {
        let januaryFirst = weekday(year: year, dayOfYear: 1)
        return januaryFirst == 4 || (januaryFirst == 3 && isLeap(year)) ? 53 : 52
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                         "October", "November", "December"]
}

public struct ChatDateError: Error, CustomStringConvertible, Equatable, Sendable {
    public let text: String
    public let problem: String
    public init(text: String, problem: String) {
        self.text = text
        self.problem = problem
    }
    public var description: String { "\(text.debugDescription): \(problem)" }
}
