import Foundation

/// JSONSerialization hands back NSNumber for numbers and booleans alike, and on Linux `1 is Bool`
/// is true; the boxed boolean's class is the only reliable tell.
func isJSONBool(_ v: Any) -> Bool {
    String(describing: type(of: v)).contains("Boolean")
}

/// An integer from a JSON value, or nil when it is a boolean, a fraction, or not a number.
func jsonInt(_ v: Any) -> Int? {
    guard !isJSONBool(v), let n = v as? NSNumber else { return nil }
    let d = n.doubleValue
    guard d.isFinite, d == d.rounded(), abs(d) < 9e15 else { return nil }
    return Int(d)
}

func jsonDouble(_ v: Any) -> Double? {
    guard !isJSONBool(v), let n = v as? NSNumber else { return nil }
    return n.doubleValue
}

func jsonBool(_ v: Any) -> Bool? {
    guard isJSONBool(v), let n = v as? NSNumber else { return nil }
    return n.boolValue
}
