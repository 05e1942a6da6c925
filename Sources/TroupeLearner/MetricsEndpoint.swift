import Foundation
import TroupeRuntime
import TroupeTensor
#if canImport(Glibc)
import Glibc
#endif

/// The learner's HTTP `GET /metrics`: the Prometheus text exposition metrics.prom holds, served from
/// memory (`PrometheusExposition`) for a Prometheus server to scrape. Read-only and unauthenticated,
/// like node-exporter: it binds where the learner's sockets bind (`endpoints.bind_host`).
///
/// Hand-written on POSIX sockets rather than on an HTTP library: FlyingFox, the small one in the
/// package mirror, imports FoundationNetworking, and the static bundle (cluster/bundle) then fails to
/// link (libcurl). The request is untrusted: its head is at most 8 KiB and must arrive within 5 s, at
/// most 16 connections are served at once, and anything but `GET /metrics` gets 404, 405 or 400.
package final class MetricsEndpoint: @unchecked Sendable {
    package let port: Int
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let exposition: PrometheusExposition
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    static let maxHeadBytes = 8192
    static let headSeconds = 5.0
    static let maxConnections = 16

    /// Listens on `host:port` (`*` for every interface) or throws naming the key and the address.
    package init(host: String, port: Int, exposition: PrometheusExposition) throws {
        func failure(_ what: String) -> MetricsEndpointError {
            MetricsEndpointError("endpoints.metrics_port: cannot listen on \(host):\(port) for /metrics: \(what)")
        }
        let ipv6 = host.contains(":")
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            let text = host.trimmingCharacters(in: ["[", "]"])
            guard text == "::" || inet_pton(AF_INET6, text, &address.sin6_addr) == 1 else { close(fd); throw failure("\(host) is not a numeric address") }
            bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let text = ["*", "0.0.0.0"].contains(host) ? "0.0.0.0" : (host == "localhost" ? "127.0.0.1" : host)
            guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { close(fd); throw failure("\(host) is not a numeric address") }
            bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw failure(reason)
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { close(fd); throw failure("no pipe: \(String(cString: strerror(errno)))") }
        for end in pipeEnds { Self.setFlags(end) }
        listener = fd
        wake = (pipeEnds[0], pipeEnds[1])
        self.port = port
        self.exposition = exposition
        let thread = Thread { [unowned self] in
            serve()
            finished.signal()
        }
        thread.name = "troupe-metrics-http"
        self.thread = thread
        thread.start()
    }

    /// Stops serving and closes every socket; returns once the serving thread has ended.
    package func stop() {
        guard thread != nil else { return }
        thread = nil
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        finished.wait()
        close(listener)
        close(wake.read)
        close(wake.write)
    }

    deinit { stop() }

    private struct Connection {
        let fd: Int32
        let deadline: Double
        var head: [UInt8] = []
    }

    private func serve() {
        var connections: [Connection] = []
        defer { for c in connections { close(c.fd) } }
        while true {
            var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0), pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            fds += connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 200)
            if fds[0].revents != 0 { return }
            let now = monotonicSeconds()
            var open: [Connection] = []
            for (index, var connection) in connections.enumerated() {
                let events = fds[index + 2].revents
                if events != 0, let answer = read(into: &connection) {
                    respond(connection.fd, answer)
                    close(connection.fd)
                } else if events & Int16(POLLHUP | POLLERR) != 0 || now > connection.deadline {
                    close(connection.fd)
                } else {
                    open.append(connection)
                }
            }
            connections = open
            if fds[1].revents & Int16(POLLIN) != 0 {
                let fd = accept(listener, nil, nil)
                if fd >= 0 {
                    Self.setFlags(fd)
                    if connections.count < Self.maxConnections {
                        connections.append(Connection(fd: fd, deadline: now + Self.headSeconds))
                    } else {
                        close(fd)
                    }
                }
            }
        }
    }

    /// Reads what arrived; returns the answer once the request head is complete (or cannot be).
    private func read(into connection: inout Connection) -> Answer? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(connection.fd, &buffer, buffer.count, 0)
        if n <= 0 {
            return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ? Answer("400 Bad Request", "incomplete request\n") : nil
        }
        connection.head += buffer[0..<n]
        return Self.answer(toRequest: connection.head, exposition: exposition.text)
    }

    /// Non-blocking and closed on exec.
    static func setFlags(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// What a request gets: its status, body and type; a HEAD request the headers of its GET alone.
    package struct Answer: Equatable {
        package var status: String
        package var body: String
        package var type = "text/plain"
        package var headersOnly = false

        package init(_ status: String, _ body: String, type: String = "text/plain", headersOnly: Bool = false) {
            (self.status, self.body, self.type, self.headersOnly) = (status, body, type, headersOnly)
        }
    }

    /// Where the request head ends: its blank line, after CRLF or (as RFC 9112 lets a server accept) a lone LF.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 10 {
                if i + 1 < bytes.count, bytes[i + 1] == 10 { return i }
                if i + 2 < bytes.count, bytes[i + 1] == 13, bytes[i + 2] == 10 { return i }
            }
            i += 1
        }
        return nil
    }

    /// The answer to what has arrived of a request (nil: its head is not complete yet): pure, for tests.
    package static func answer(toRequest bytes: [UInt8], exposition: String) -> Answer? {
        guard let end = headEnd(bytes) else {
            return bytes.count > maxHeadBytes ? Answer("431 Request Header Fields Too Large", "request head over 8 KiB\n") : nil
        }
        if end > maxHeadBytes { return Answer("431 Request Header Fields Too Large", "request head over 8 KiB\n") }
        let firstLine = bytes[..<end].prefix { $0 != 10 }
        let requestLine = firstLine.last == 13 ? firstLine.dropLast() : firstLine
        let line = String(decoding: requestLine, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard line.count == 3, line[2].hasPrefix("HTTP/1.") else { return Answer("400 Bad Request", "malformed request line\n") }
        let path = line[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard path == "/metrics" else { return Answer("404 Not Found", "only /metrics is served here\n") }
        guard line[0] == "GET" || line[0] == "HEAD" else { return Answer("405 Method Not Allowed", "GET /metrics\n") }
        return Answer("200 OK", exposition, type: "text/plain; version=0.0.4; charset=utf-8", headersOnly: line[0] == "HEAD")
    }

    private func respond(_ fd: Int32, _ answer: Answer) {
        let body = Array(answer.body.utf8)
        var bytes = Array("HTTP/1.1 \(answer.status)\r\nContent-Type: \(answer.type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if !answer.headersOnly { bytes += body }
        // The socket is non-blocking: a client that does not read gets what fits within 2 s, then is dropped.
        let deadline = monotonicSeconds() + 2
        var sent = 0
        while sent < bytes.count && monotonicSeconds() < deadline {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { return }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 100)
        }
    }
}

package struct MetricsEndpointError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
