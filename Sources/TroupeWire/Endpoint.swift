/// A ZeroMQ endpoint, parsed and validated: `tcp://host:port`, `ipc:///path`, `inproc://name`.
///
/// Configs and command lines carry strings; parse them once with `Endpoint(parsing:)`, which says
/// exactly what is wrong (`invalid endpoint "tcp://learner": missing ":port"`).
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// `host` is a name, an IPv4 address, an IPv6 address (without brackets), an interface name
    /// (bind only) or `*` (bind only: all interfaces). Port 0 binds an ephemeral port.
    /// `source`: connect only, the local address to connect from (ZeroMQ's `src;dst` syntax).
    case tcp(host: String, port: UInt16, source: String? = nil)
    /// A Unix-domain socket path (`@name` for Linux's abstract namespace).
    case ipc(path: String)
    /// In-process, between sockets of one `ZMQContext`.
    case inproc(name: String)

    /// Longest `ipc` path: sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    public static let maxIPCPathBytes = 107

    public init(parsing text: String) throws(EndpointError) {
        func fail(_ problem: String) -> EndpointError { EndpointError(input: text, problem: problem) }
        guard let schemeEnd = text.range(of: "://") else {
            throw fail("expected transport://address, e.g. tcp://learner-host:5555, ipc:///tmp/troupe.sock or inproc://name")
        }
        let scheme = String(text[..<schemeEnd.lowerBound])
        let rest = String(text[schemeEnd.upperBound...])
        if rest.contains(where: { $0.isWhitespace || $0 == "\0" }) { throw fail("contains whitespace or NUL") }
        switch scheme {
        case "tcp":
            var source: String?
            var target = rest
            if let semicolon = rest.firstIndex(of: ";") {
                let sourcePart = String(rest[..<semicolon])
                target = String(rest[rest.index(after: semicolon)...])
                // The source port is almost always 0 (any); keep the host only.
                let (sourceHost, _) = try Endpoint.splitHostPort(sourcePart, whole: text, what: "source address")
                source = sourceHost
            }
            let (host, port) = try Endpoint.splitHostPort(target, whole: text, what: "address")
            self = .tcp(host: host, port: port, source: source)
        case "ipc":
            if rest.isEmpty { throw fail("empty ipc path") }
            if rest.utf8.count > Endpoint.maxIPCPathBytes {
                throw fail("ipc path is \(rest.utf8.count) bytes; Unix sockets allow at most \(Endpoint.maxIPCPathBytes)")
            }
            self = .ipc(path: rest)
        case "inproc":
            if rest.isEmpty { throw fail("empty inproc name") }
            self = .inproc(name: rest)
        case "":
            throw fail("missing transport before ://")
        default:
            throw fail("unsupported transport \"\(scheme)\"; use tcp, ipc or inproc")
        }
    }

    /// Splits `host:port` / `[v6]:port`, validating both parts.
    private static func splitHostPort(_ text: String, whole: String, what: String) throws(EndpointError) -> (String, UInt16) {
        func fail(_ problem: String) -> EndpointError { EndpointError(input: whole, problem: problem) }
        let host: String
        let portText: String
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail("\(what): \"[\" without \"]\" around an IPv6 address") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { throw fail("\(what): missing \":port\" after the IPv6 address") }
            portText = String(after.dropFirst())
            if host.isEmpty || !host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" }) {
                throw fail("\(what): \"\(host)\" is not an IPv6 address")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw fail("\(what): missing \":port\"") }
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
            if host.isEmpty { throw fail("\(what): empty host; use * to bind all interfaces") }
            if host.contains(":") { throw fail("\(what): put an IPv6 address in brackets, e.g. tcp://[::1]:5555") }
            let allowed = host == "*" || host.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." || $0 == "_" }
            if !allowed { throw fail("\(what): \"\(host)\" is not a host name, address, interface or *") }
        }
        if portText == "*" { return (host, 0) }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw fail("\(what): port \"\(portText)\" is not a number")
        }
        guard let port = UInt16(portText) else { throw fail("\(what): port \(portText) is out of range 0...65535") }
        return (host, port)
    }

    /// The string libzmq takes.
    public var description: String {
        switch self {
        case .tcp(let host, let port, let source):
            let target = "\(Endpoint.bracketed(host)):\(port)"
            if let source { return "tcp://\(Endpoint.bracketed(source)):0;\(target)" }
            return "tcp://\(target)"
        case .ipc(let path): return "ipc://\(path)"
        case .inproc(let name): return "inproc://\(name)"
        }
    }

    private static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// True for hosts that mean "every interface" when binding: `*`, `0.0.0.0`, `::`.
    public var isWildcard: Bool {
        if case .tcp(let host, _, _) = self { return host == "*" || host == "0.0.0.0" || host == "::" }
        return false
    }

    /// True for tcp endpoints on the loopback interface, which remote peers cannot reach.
    public var isLoopback: Bool {
        if case .tcp(let host, _, _) = self {
            return host == "localhost" || host.hasPrefix("127.") || host == "::1"
        }
        return false
    }

    /// Checks that peers can connect to this endpoint: no wildcard host, no port 0.
    public func validateForConnect() throws(EndpointError) {
        if isWildcard {
            throw EndpointError(input: description, problem: "a wildcard host cannot be connected to; give the host name or address peers should use")
        }
        if case .tcp(_, 0, _) = self {
            throw EndpointError(input: description, problem: "port 0 cannot be connected to; give the port the learner bound")
        }
    }
}

public struct EndpointError: Error, Sendable, Equatable, CustomStringConvertible {
    public let input: String
    public let problem: String

    public init(input: String, problem: String) {
        self.input = input
        self.problem = problem
    }

    public var description: String { "invalid endpoint \"\(input)\": \(problem)" }
}

/// Where a service binds, and what it tells peers to connect to. Separate settings because they
/// differ on every real cluster: bind `tcp://*:5555` (or an interface), advertise
/// `tcp://node12.cluster:5555`. Binding or advertising `localhost` where remote actors must
/// connect is a classic hang.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var bind: Endpoint
    /// What peers connect to. Nil: the bound endpoint itself (fine for loopback, ipc and inproc;
    /// an error for a wildcard bind). Port 0 here means "the port actually bound".
    public var advertise: Endpoint?

    public init(bind: Endpoint, advertise: Endpoint? = nil) {
        self.bind = bind
        self.advertise = advertise
    }

    public init(bind: String, advertise: String? = nil) throws(EndpointError) {
        self.bind = try Endpoint(parsing: bind)
        if let advertise {
            let endpoint = try Endpoint(parsing: advertise)
            if endpoint.isWildcard {
                throw EndpointError(input: advertise, problem: "an advertised address must be one peers can connect to, not a wildcard")
            }
            self.advertise = endpoint
        } else {
            self.advertise = nil
        }
    }

    /// The endpoint to give peers, once the socket is bound to `actual` (from `ZMQSocket.bind`).
    public func advertised(boundTo actual: Endpoint) throws(EndpointError) -> Endpoint {
        guard let advertise else {
            if actual.isWildcard || bind.isWildcard {
                throw EndpointError(input: bind.description, problem: "binds every interface, so peers need an advertised address (the host name or address they can reach)")
            }
            return actual
        }
        if case .tcp(let host, 0, let source) = advertise, case .tcp(_, let port, _) = actual {
            return .tcp(host: host, port: port, source: source)
        }
        try advertise.validateForConnect()
        return advertise
    }

    public var description: String {
        if let advertise { return "bind \(bind), advertise \(advertise)" }
        return "bind \(bind)"
    }
}
