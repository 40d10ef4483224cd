/// How many connections a node's listeners accept at once, given its open-file limit: every accepted connection is
/// a descriptor, and the node also needs descriptors for blobs it serves, the index, its own outgoing connections and
/// avahi. Past the cap, new connections wait in the kernel's backlog (and are refused when it is full) instead of
/// exhausting the descriptors, so a flood of idle sockets cannot make the node unable to open a blob.
public enum ConnectionBudget {
    /// Descriptors kept for everything but accepted connections.
    public static let reserved = 128
    /// Never fewer than this, whatever the limit says (a node must still serve a few peers).
    public static let floor = 8

    /// The cap for accepted peer connections: the requested cap, at most half of what the limit leaves.
    public static func maxConnections(requested: Int, openFileLimit: UInt64) -> Int {
        let available = openFileLimit > UInt64(Int.max) ? Int.max : Int(openFileLimit)
        let share = available > reserved ? (available - reserved) / 2 : 0
        return max(floor, min(max(requested, floor), share))
    }
}
