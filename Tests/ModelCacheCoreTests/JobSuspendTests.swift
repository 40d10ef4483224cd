import Testing
import ModelCacheCore

/// A node that stops while a job runs leaves the job resumable: pending, never failed; finished jobs stay as they are.
@Suite struct JobSuspendTests {
    func job(_ state: Job.State) -> Job {
        var j = Job(id: "j", title: "t", requests: [Job.Request(url: "http://h/0")])
        j.state = state
        return j
    }

    @Test(arguments: [Job.State.pending, .downloading, .pausedOffline])
    func anUnfinishedJobBecomesPendingWithAReason(_ state: Job.State) {
        var j = job(state)
        JobTransition.suspend(&j)
        #expect(j.state == .pending && j.failureReason == nil && j.result == "")
        #expect(j.message?.contains("shutdown") == true)
        JobTransition.apply(.start, to: &j)  // and the next node starts it again
        #expect(j.state == .downloading && j.message == nil)
    }

    @Test(arguments: [Job.State.success, .failure])
    func aFinishedJobIsLeftAlone(_ state: Job.State) {
        var j = job(state)
        let before = j
        JobTransition.suspend(&j)
        #expect(j == before)
    }
}
