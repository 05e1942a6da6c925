// TroupeRL's API (option overrides, `troupe algo`'s input and output) is written in JSONValue terms:
// its clients import TroupeJSON too.
import TroupeJSON

extension JSONValue {
    /// A finite number, or an error naming `field`.
    func number(field: String) throws -> Double {
        guard let number = double else { throw AlgorithmError(field: field, problem: "expected a number, got \(self)") }
        try Check.finite(number, field)
        return number
    }

    /// A whole number that fits an Int exactly, or an error naming `field`.
    func integer(field: String) throws -> Int {
        guard let integer = int else { throw AlgorithmError(field: field, problem: "expected an integer, got \(self)") }
        return integer
    }
}
