/// How a download's bytes are asked for: Range GETs of one chunk each, spread over connections and sources by the
/// `ChunkScheduler`, or one GET whose body streams on across chunk ends (each chunk cut, hashed, checked and
/// journalled as its end passes).
///
/// One stream is the only way to a server without Range support. It is also the faster way for one connection to
/// the origin alone: a GET per chunk leaves the connection idle at every chunk's end while the next request goes
/// out and its first bytes come back (bench/request-size.sh: 1 GiB over one connection on loopback took 1.765 s in
/// 4 MiB GETs against 1.440 s in one). A peer that is the only source is read as one stream whatever the
/// connections: one TCP stream fills a LAN link, and four cost both nodes more CPU for nothing (bench/README,
/// session 28, 1 GiB from a node on loopback, 6 alternating rounds: the serving node 0.15 CPU-s per copy against
/// 0.20, the fetch's median 1.43 s against 1.565 s, sooner in 5 of 6 rounds, peak RSS 45 MiB against 55). It is never
/// chosen when several sources or a swarm take part: they need chunks handed out one at a time.
public enum StreamPlan: Equatable, Sendable {
    /// One chunk per Range GET (the scheduler's work).
    case chunks
    /// One GET from this byte (a chunk's first; 0 asks for the whole body, without a Range header) to the end.
    case oneStream(from: Int64)

    /// The one source of a download (no other source, no swarm peer sharing it).
    public enum Sole: Sendable {
        case origin
        /// A LAN peer, every chunk of whose stream is checked against the manifest the peers agreed on.
        case peer
    }

    /// - Parameters:
    ///   - sole: the download's only source; nil when there are several, or a swarm shares the download.
    ///   - connections: the origin's connections for this download (a sole peer gets one stream whatever this is).
    ///   - have: chunks already verified (a resumed download).
    public static func decide(sole: Sole?, acceptsRanges: Bool, connections: Int, layout: ChunkLayout,
                              have: ChunkSet) -> StreamPlan {
        guard let sole else { return .chunks }
        if !acceptsRanges || layout.count <= 1 { return .oneStream(from: 0) }
        guard sole == .peer || connections <= 1 else { return .chunks }
        // From the first missing chunk, when nothing after it is held: a stream across verified chunks would fetch
        // their bytes again for nothing (a resume of a run that used several connections); those go chunk by chunk.
        let first = have.contiguousPrefix
        guard first < layout.count, have.count == first else { return .chunks }
        return .oneStream(from: layout.range(of: first).lowerBound)
    }
}
