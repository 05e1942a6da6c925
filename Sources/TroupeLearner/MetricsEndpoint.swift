import FlyingFox
import FlyingSocks
import Foundation
import TroupeRuntime

/// The learner's HTTP `GET /metrics`: the Prometheus text exposition metrics.prom holds, served from
/// memory (`PrometheusExposition`) for a Prometheus server to scrape. Read-only and unauthenticated,
/// like node-exporter: it binds where the learner's sockets bind (`endpoints.bind_host`). Any other
/// path gets 404; a request that does not finish within 5 s is dropped by the server.
package final class MetricsEndpoint: @unchecked Sendable {
    package let port: Int
    private let server: HTTPServer
    private let task: Task<Void, any Error>

    /// Listens on `host:port` (`*` for every interface) or throws naming the address; returns once listening.
    package init(host: String, port: Int, exposition: PrometheusExposition) throws {
        let address: any SocketAddress
        do {
            switch host {
            case "*", "0.0.0.0": address = sockaddr_in.inet(port: UInt16(port))
            case "::", "[::]": address = sockaddr_in6.inet6(port: UInt16(port))
            case let h where h.contains(":"): address = try sockaddr_in6.inet6(ip6: h.trimmingCharacters(in: ["[", "]"]), port: UInt16(port))
            default: address = try sockaddr_in.inet(ip4: host == "localhost" ? "127.0.0.1" : host, port: UInt16(port))
            }
        } catch {
            throw MetricsEndpointError("endpoints.metrics_port: cannot listen on \(host):\(port) for /metrics: \(host) is not a numeric address")
        }
        let server = HTTPServer(config: .init(address: address, timeout: 5, pool: HTTPServer.defaultPool(logger: .disabled), logger: .disabled))
        let outcome = StartOutcome()
        self.server = server
        self.port = port
        task = Task {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                             body: Data(exposition.text.utf8))
            }
            do { try await server.run() } catch { outcome.failed("\(error)") }
        }
        // run() either reaches listening or throws (a port in use); wait for one of the two.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let failure = outcome.failure {
                throw MetricsEndpointError("endpoints.metrics_port: cannot listen on \(host):\(port) for /metrics: \(failure)")
            }
            if Self.await({ await server.isListening }) { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        task.cancel()
        throw MetricsEndpointError("endpoints.metrics_port: /metrics did not start listening on \(host):\(port) within 10 s")
    }

    /// Closes the listening socket and any connection.
    package func stop() {
        Self.await { [server, task] in
            await server.stop(timeout: 1)
            task.cancel()
        }
    }

    /// The learner's threads are not async: they wait here for the server actor's answer.
    private static func `await`<Value: Sendable>(_ body: @escaping @Sendable () async -> Value) -> Value {
        let box = StartOutcome.Box<Value>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

package struct MetricsEndpointError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}

/// How the server task's start ended, read from the thread that started it.
private final class StartOutcome: @unchecked Sendable {
    final class Box<Value>: @unchecked Sendable { var value: Value? }
    private let lock = NSLock()
    private var message: String?
    var failure: String? { lock.withLock { message } }
    func failed(_ text: String) { lock.withLock { message = text } }
}
