extension JobTransition {
    /// The node stops while the job runs (shutdown): the job goes back to pending, to resume at the next start.
    /// A finished job never changes.
    public static func suspend(_ job: inout Job) {
        guard !job.state.isFinal else { return }
        job.state = .pending
        job.message = "interrupted by the node's shutdown; resumes when the node starts again"
    }
}
