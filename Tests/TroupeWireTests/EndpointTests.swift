import Testing
import TroupeWire

@Test func parsesValidEndpoints() throws {
    #expect(try Endpoint(parsing: "tcp://learner-1.cluster:5555") == .tcp(host: "learner-1.cluster", port: 5555))
    #expect(try Endpoint(parsing: "tcp://*:0") == .tcp(host: "*", port: 0))
    #expect(try Endpoint(parsing: "tcp://127.0.0.1:*") == .tcp(host: "127.0.0.1", port: 0))
    #expect(try Endpoint(parsing: "tcp://[::1]:7000") == .tcp(host: "::1", port: 7000))
    #expect(try Endpoint(parsing: "tcp://127.0.0.3:0;127.0.0.1:7401") == .tcp(host: "127.0.0.1", port: 7401, source: "127.0.0.3"))
    #expect(try Endpoint(parsing: "ipc:///tmp/troupe.sock") == .ipc(path: "/tmp/troupe.sock"))
    #expect(try Endpoint(parsing: "ipc://@abstract") == .ipc(path: "@abstract"))
    #expect(try Endpoint(parsing: "inproc://logs") == .inproc(name: "logs"))
}

@Test func rendersWhatLibzmqTakes() throws {
    for text in ["tcp://learner:5555", "tcp://[::1]:7000", "tcp://127.0.0.3:0;127.0.0.1:7401", "ipc:///tmp/x.sock", "inproc://a"] {
        #expect(try Endpoint(parsing: text).description == text)
    }
}

@Test(arguments: [
    ("learner:5555", "expected transport://address"),
    ("udp://host:1", "unsupported transport \"udp\""),
    ("tcp://host", "missing \":port\""),
    ("tcp://:5555", "empty host"),
    ("tcp://host:http", "port \"http\" is not a number"),
    ("tcp://host:70000", "out of range"),
    ("tcp://::1:5555", "IPv6 address in brackets"),
    ("tcp://[::1:5555", "without \"]\""),
    ("tcp://ho st:1", "whitespace"),
    ("tcp://h@st:1", "is not a host name"),
    ("ipc://", "empty ipc path"),
    ("inproc://", "empty inproc name"),
    ("://x", "missing transport"),
])
func rejectsInvalidEndpoints(input: String, expectedProblem: String) {
    #expect {
        try Endpoint(parsing: input)
    } throws: { error in
        guard let error = error as? EndpointError else { return false }
        return error.input == input && error.description.contains(expectedProblem)
    }
}

@Test func rejectsOverlongIPCPath() {
    let path = "/tmp/" + String(repeating: "x", count: 120)
    #expect(throws: EndpointError.self) { try Endpoint(parsing: "ipc://" + path) }
}

@Test func advertisedAddressIsSeparateFromBindAddress() throws {
    // Wildcard bind: peers need an advertised address; port 0 there means "the port bound".
    let cluster = try ListenAddress(bind: "tcp://*:0", advertise: "tcp://node12.cluster:0")
    #expect(try cluster.advertised(boundTo: .tcp(host: "0.0.0.0", port: 41234)) == .tcp(host: "node12.cluster", port: 41234))

    let fixed = try ListenAddress(bind: "tcp://0.0.0.0:5555", advertise: "tcp://node12:5555")
    #expect(try fixed.advertised(boundTo: .tcp(host: "0.0.0.0", port: 5555)) == .tcp(host: "node12", port: 5555))

    let wildcardOnly = try ListenAddress(bind: "tcp://*:5555")
    #expect(throws: EndpointError.self) { try wildcardOnly.advertised(boundTo: .tcp(host: "0.0.0.0", port: 5555)) }

    let loopback = try ListenAddress(bind: "tcp://127.0.0.1:0")
    #expect(try loopback.advertised(boundTo: .tcp(host: "127.0.0.1", port: 40000)) == .tcp(host: "127.0.0.1", port: 40000))

    #expect(throws: EndpointError.self) { try ListenAddress(bind: "tcp://*:1", advertise: "tcp://*:1") }
    #expect(throws: EndpointError.self) { try Endpoint.tcp(host: "node", port: 0).validateForConnect() }
    #expect(Endpoint.tcp(host: "127.0.0.1", port: 1).isLoopback)
    #expect(!Endpoint.tcp(host: "node12", port: 1).isLoopback)
}
