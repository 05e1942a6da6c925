import ArgumentParser
import TroupeJSON
import TroupeRuntime

/// Refuses a flag that stands for the run-configuration setting `key` when that setting would refuse its
/// value, naming the setting's range (declared once, with the setting: `RunConfig.admits`).
func requireSettingRange(_ flag: String, _ value: JSONValue, shown: String, as key: String) throws {
    let (ok, range) = RunConfig.admits(value, as: key)
    guard ok else { throw ValidationError("\(flag) must be in \(range) (as \(key)), got \(shown)") }
}
