import Foundation
import Testing

/// The cluster recipes, checked offline: CI runs no Kubernetes cluster and no container engine.
/// cluster/k8s/validate.sh checks the manifests against the Kubernetes schema, their run configuration
/// with `troupe config` and the Dockerfile with BuildKit's parser; cluster/bundle/test-bundle.sh runs the
/// portable bundle in a glibc-only chroot. CI installs the checkers and builds the bundle first
/// (scripts/bootstrap.sh test) and sets CI, so there a missing one fails; elsewhere the test is skipped
/// with a message. Part of the serialized integration suite: the bundle test's processes must not
/// compete with the other tests' for the cores.
enum ClusterRecipes {
    static let repository = TroupeBinary.repository.path
    static let required = ProcessInfo.processInfo.environment["CI"] != nil
    static let venv = ProcessInfo.processInfo.environment["TROUPE_CLUSTER_VENV"] ?? repository + "/.build/venv-cluster"
    static let validatorInstalled = FileManager.default.isExecutableFile(atPath: venv + "/bin/kubernetes-validate")
    static let validateScript = repository + "/cluster/k8s/validate.sh"

    /// TROUPE_BUNDLE, else the newest tarball cluster/bundle/make-bundle.sh left in .build/bundle.
    static let bundle: String? = {
        if let explicit = ProcessInfo.processInfo.environment["TROUPE_BUNDLE"], !explicit.isEmpty { return explicit }
        let directory = repository + "/.build/bundle"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("troupe-") && $0.hasSuffix(".tar.gz") }.sorted().last.map { directory + "/" + $0 }
    }()
    static let isRoot = getuid() == 0

    /// Runs `command` (found on PATH) to the end, within 5 minutes; its standard output and error together.
    static func run(_ command: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let (status, output) = try Command.run(["/usr/bin/env"] + command,
                                               environment: ProcessInfo.processInfo.environment.merging(extra) { $1 }, within: 300)
        return (status, output)
    }
}

extension RuntimeIntegrationTests {
    func requireClusterValidator() throws {
        try #require(ClusterRecipes.validatorInstalled, "CI is set but \(ClusterRecipes.venv)/bin/kubernetes-validate is missing: run bash cluster/k8s/validate.sh --install")
    }

    @Test(.enabled(if: ClusterRecipes.validatorInstalled || ClusterRecipes.required, "kubernetes-validate not installed (bash cluster/k8s/validate.sh --install); k8s manifest check skipped"),
          .timeLimit(.minutes(2)))
    func theKubernetesRecipeValidates() throws {
        try requireClusterValidator()
        let result = try ClusterRecipes.run(["bash", ClusterRecipes.validateScript, "--troupe", TroupeBinary.path()])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("validate: all checks passed"), "\(result.output)")
        #expect(result.output.contains("troupe config --config troupe-config-config.json"), "the ConfigMap's configuration was not decoded")
    }

    /// The checks can fail: a copy of each file with one mistake is refused, naming it.
    @Test(.enabled(if: ClusterRecipes.validatorInstalled || ClusterRecipes.required, "kubernetes-validate not installed (bash cluster/k8s/validate.sh --install); k8s manifest check skipped"),
          .timeLimit(.minutes(2)))
    func brokenCopiesOfTheRecipeAreRefused() throws {
        try requireClusterValidator()
        let scratch = NSTemporaryDirectory() + "troupe-k8s-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func brokenCopy(_ file: String, _ original: String, _ broken: String) throws -> String {
            let text = try String(contentsOfFile: ClusterRecipes.repository + "/cluster/k8s/" + file, encoding: .utf8)
            try #require(text.contains(original), "\(file) no longer holds \(original)")
            let path = scratch + "/" + (file as NSString).lastPathComponent
            try text.replacingOccurrences(of: original, with: broken).write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let troupe = try TroupeBinary.path()
        for (file, original, broken, message) in [
            ("manifests/learner.yaml", "replicas: 1", "replica: 1", "'replica' was unexpected"),
            ("manifests/actors.yaml", "replicas: 2", "replicas: \"two\"", "spec.replicas: 'two' is not of type 'integer'"),
            ("manifests/config.yaml", "\"max_steps\": 200", "\"max_step\": 200", "run.max_step: unknown key"),
        ] {
            let path = try brokenCopy(file, original, broken)
            let result = try ClusterRecipes.run(["bash", ClusterRecipes.validateScript, "--troupe", troupe, path])
            #expect(result.status != 0, "\(file) with \(broken) passed")
            #expect(result.output.contains(message), "\(file) with \(broken): \(result.output)")
        }
        let dockerfile = try brokenCopy("Dockerfile", "COPY models/arith-base", "COPY models/no-such-model")
        let result = try ClusterRecipes.run([ClusterRecipes.venv + "/bin/python", ClusterRecipes.repository + "/cluster/k8s/check_recipes.py", "dockerfile", ClusterRecipes.repository, dockerfile])
        #expect(result.status == 1)
        #expect(result.output.contains("COPY source models/no-such-model does not exist"), "\(result.output)")
    }

    @Test(.enabled(if: (ClusterRecipes.bundle != nil && ClusterRecipes.isRoot) || ClusterRecipes.required, "no bundle in .build/bundle (bash cluster/bundle/make-bundle.sh) or not root; clean-root bundle test skipped"),
          .timeLimit(.minutes(3)))
    func theBundleRunsOnACleanRoot() throws {
        let bundle = try #require(ClusterRecipes.bundle, "CI is set but no bundle was found in .build/bundle: scripts/bootstrap.sh test makes it")
        try #require(ClusterRecipes.isRoot, "CI is set but the bundle test needs root (chroot)")
        let ports = try PortBlock.random()
        let result = try ClusterRecipes.run(["bash", ClusterRecipes.repository + "/cluster/bundle/test-bundle.sh", bundle],
                                  environment: ["TROUPE_TEST_PORT_BASE": String(ports.base)])
        #expect(result.status == 0, "\(result.output.suffix(4000))")
        #expect(result.output.contains("the bundle passed on a clean root"), "\(result.output.suffix(4000))")
    }
}
