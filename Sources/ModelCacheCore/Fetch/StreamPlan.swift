/// How a download's bytes are asked for: Range GETs of one chunk each, spread over connections and sources by the
/// `ChunkScheduler`, or one GET whose body streams on across chunk ends (each chunk cut, hashed and journalled as its
/// end passes).
///
/// One stream is the only way to a server without Range support. It is also the faster way for one connection to
/// the origin alone: a GET per chunk leaves the connection idle at every chunk's end while the next request goes
/// out and its first bytes come back (bench/request-size.sh: 1 GiB over one connection on loopback took 1.765 s in
/// 4 MiB GETs against 1.440 s in one). It is never chosen when peers take part: they, and the swarm's claims, need
/// chunks handed out one at a time.
public enum StreamPlan: Equatable, Sendable {
    /// One chunk per Range GET (the scheduler's work).
    case chunks
    /// One GET from this byte (a chunk's first; 0 asks for the whole body, without a Range header) to the end.
    case oneStream(from: Int64)

    /// - Parameters:
    ///   - onlyOrigin: the origin is the only source, and no swarm peer shares the download.
    ///   - connections: the origin's connections for this download.
    ///   - have: chunks already verified (a resumed download).
    public static func decide(onlyOrigin: Bool, acceptsRanges: Bool, connections: Int, layout: ChunkLayout,
                              have: ChunkSet) -> StreamPlan {
        guard onlyOrigin else { return .chunks }
        if !acceptsRanges || layout.count <= 1 { return .oneStream(from: 0) }
        guard connections <= 1 else { return .chunks }
        // From the first missing chunk, when nothing after it is held: a stream across verified chunks would fetch
        // their bytes again for nothing (a resume of a run that used several connections); those go chunk by chunk.
        let first = have.contiguousPrefix
        guard first < layout.count, have.count == first else { return .chunks }
        return .oneStream(from: layout.range(of: first).lowerBound)
    }
}
