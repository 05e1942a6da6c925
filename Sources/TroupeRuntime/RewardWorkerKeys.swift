import TroupeWire

/// The CURVE keys of the learner's sockets to its reward workers: the public key each worker must
/// prove it holds, and the key pair the learner presents (which the workers' allowlists admit). A
/// score decides what the policy learns, so a learner that authenticates its actors asks its workers
/// for scores only over authenticated, encrypted connections.
package struct RewardWorkerKeys: Sendable, Equatable {
    /// One per endpoint, in order.
    package let serverKeys: [CurveKey]
    package let client: CurveKeyPair

    /// What the learner's own keys are: none (`--insecure-plaintext`), a key pair, or one `troupe run`
    /// makes for every run (which no worker can have admitted beforehand).
    package enum LearnerKeys {
        case insecurePlaintext
        case pair(CurveKeyPair)
        case madeForEachRun
    }

    /// The keys `settings` name, read and checked; nil for plaintext, which only a learner without
    /// keys of its own may use. Every error names the key or the file.
    package static func resolve(_ settings: RunConfig.RewardWorkers, learner: LearnerKeys) throws -> RewardWorkerKeys? {
        guard settings.enabled else { return nil }
        guard !settings.serverKeys.isEmpty else {
            if case .insecurePlaintext = learner { return nil }
            throw ConfigError(key: "reward_workers.server_keys", problem: "is empty, but this learner authenticates its actors: its reward workers would be asked in plaintext, and whoever reaches their addresses could read the completions or serve the scores. Name the workers' public key files (troupe keygen; each worker's --key), or run with --insecure-plaintext")
        }
        // The configuration's checks leave one file for every worker, or one per endpoint.
        let keys = try settings.serverKeys.map { path in
            do { return try CurveKeyFile.read(path).publicKey } catch {
                throw ConfigError(key: "reward_workers.server_keys", problem: "\(error)")
            }
        }
        let client: CurveKeyPair
        switch (settings.clientKey.isEmpty, learner) {
        case (false, _):
            do { client = try CurveKeyFile.readSecret(settings.clientKey).pair } catch {
                throw ConfigError(key: "reward_workers.client_key", problem: "\(error)")
            }
        case (true, .pair(let pair)):
            client = pair
        case (true, .insecurePlaintext):
            throw ConfigError(key: "reward_workers.client_key", problem: "is empty and the learner has no key of its own (--insecure-plaintext): name the secret key file the learner presents to its workers")
        case (true, .madeForEachRun):
            throw ConfigError(key: "reward_workers.client_key", problem: "is empty, but troupe run makes the learner a new key pair for every run, which no worker's --allow can list: name a secret key file, made once, whose public file the workers admit")
        }
        return RewardWorkerKeys(serverKeys: keys.count == 1 ? Array(repeating: keys[0], count: settings.endpoints.count) : keys, client: client)
    }
}
