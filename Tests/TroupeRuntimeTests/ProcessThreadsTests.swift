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
}
