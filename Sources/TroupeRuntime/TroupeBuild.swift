/// Identifies the binary in Hello messages and run logs.
package enum TroupeBuild {
    package static let version = "0.1.0"
    package static var id: String { "troupe \(version)" }
}

/// The Bye reasons whose meaning a peer acts on.
package enum ByeReason {
    /// The run is over: actors exit 0. Any other Bye from the learner means "wait for the learner".
    package static let runFinished = "run finished"
}
