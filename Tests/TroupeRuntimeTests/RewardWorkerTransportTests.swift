import Foundation
import Testing
import TroupeProto
import TroupeRuntime
import TroupeWire

/// The reward workers' DEALERs on real sockets: an answer over the 1 MiB the learner reads is counted
/// as garbage and the connection stays up (libzmq's own size limit would end it for good).
@Suite struct RewardWorkerTransportTests {
    @Test func anOversizedAnswerIsGarbageAndTheWorkerStaysReachable() throws {
        let context = try ZMQContext(ioThreads: 1)
        defer { context.shutdown() }
        let worker = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        defer { worker.close() }
        let bound = try worker.bind(Endpoint(parsing: "tcp://127.0.0.1:*"))
        let transport = try ZeroMQRewardWorkers(endpoints: [bound.description], keys: nil)
        defer { transport.close() }

        /// Sends request `id` (retrying while the connection comes up) and returns the worker's routing id.
        func ask(_ id: UInt64) throws -> [UInt8] {
            var request = Troupe_V1_RewardRequest()
            request.protocol = rewardProtocolVersion
            request.requestID = id
            let deadline = Date().addingTimeInterval(10)
            while !transport.send(request, to: 0) {
                try #require(Date() < deadline, "the worker's connection never came up")
                Thread.sleep(forTimeInterval: 0.01)
            }
            guard case .message(let frames) = try worker.receive(deadline: .afterMilliseconds(5000)) else { throw HarnessFailure("no request") }
            return frames[0].bytes
        }
        func answers(_ count: Int) throws -> [[[UInt8]]] {
            var got: [[[UInt8]]] = []
            let deadline = Date().addingTimeInterval(10)
            while got.count < count && Date() < deadline {
                got += transport.receive().map(\.frames)
                Thread.sleep(forTimeInterval: 0.01)
            }
            return got
        }
        var response = Troupe_V1_RewardResponse()
        response.protocol = rewardProtocolVersion
        response.requestID = 1
        let route = try ask(1)
        _ = try worker.send([Frame(route), Frame([UInt8](repeating: 7, count: 2 << 20))])
        _ = try worker.send([Frame(route), Frame(try response.serializedBytes())])
        let first = try answers(2)
        #expect(first.count == 2)
        #expect(first.first == [[0xFF]], "the 2 MiB answer is delivered as an undecodable frame: garbage")
        #expect(first.last == [try response.serializedBytes()])
        // Still connected: the next request reaches the worker and its answer comes back.
        response.requestID = 2
        let again = try ask(2)
        _ = try worker.send([Frame(again), Frame(try response.serializedBytes())])
        #expect(try answers(1) == [[try response.serializedBytes()]])
    }
}

private struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
