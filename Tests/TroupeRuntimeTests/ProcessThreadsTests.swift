import Foundation
import Testing
import TroupeRuntime

struct ProcessThreadsTests {
    @Test func theMainThreadIsTheProcess() throws {
        let threads = ProcessThreads.all()
        #expect(threads.contains { $0.id == getpid() }, "\(threads)")
        #expect(threads.count >= 2, "a test process runs several threads: \(threads)")
    }

    /// A background worker knows its kernel thread id once it is made: listed under the name it gave,
    /// distinct from the caller's, and not among the unnamed threads.
    @Test func aWorkerKnowsItsThreadID() throws {
        let worker = BackgroundWorker<Int, Int>(name: "id-probe") { $0 + 1 }
        defer { worker.stop() }
        let id = try #require(worker.threadID)
        #expect(id != ProcessThreads.currentID())
        let listed = ProcessThreads.all().first { $0.id == id }
        #expect(listed?.name == "id-probe", "\(String(describing: listed))")
        #expect(!ProcessThreads.unnamed().contains { $0.id == id })
        #expect(!ProcessThreads.unnamed().contains { $0.id == getpid() })
        worker.submit(1)
        #expect(worker.waitForIdle() == [2])
    }

    /// A bounded wait returns at its deadline while a job runs, and with the outcome once it is done.
    @Test func aBoundedWaitReturnsAtItsDeadlineOrWithTheOutcome() {
        let gate = DispatchSemaphore(value: 0)
        let worker = BackgroundWorker<Int, Int>(name: "bounded") { job in gate.wait(); return job + 1 }
        defer { worker.stop() }
        worker.submit(1)
        let start = Date()
        #expect(worker.waitForIdle(upTo: 0.2).isEmpty)
        #expect(Date().timeIntervalSince(start) >= 0.19 && worker.busy)
        gate.signal()
        var outcomes: [Int] = []
        let deadline = Date().addingTimeInterval(30)
        while outcomes.isEmpty && Date() < deadline { outcomes += worker.waitForIdle(upTo: 1) }
        #expect(outcomes == [2] && !worker.busy)
    }
}
