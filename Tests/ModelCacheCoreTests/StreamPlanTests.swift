import Testing
@testable import ModelCacheCore

/// One GET across chunk ends, or one GET per chunk (see `StreamPlan`).
@Suite struct StreamPlanTests {
    let layout = try! ChunkLayout(size: 10 * 65_536, chunkSize: 65_536)  // 10 chunks; a literal, not input

    func have(_ chunks: [Int]) -> ChunkSet {
        var s = ChunkSet(capacity: 10)
        for c in chunks { _ = s.insert(c) }
        return s
    }

    func plan(onlyOrigin: Bool = true, ranges: Bool = true, connections: Int = 1, have chunks: [Int] = []) -> StreamPlan {
        StreamPlan.decide(onlyOrigin: onlyOrigin, acceptsRanges: ranges, connections: connections, layout: layout, have: have(chunks))
    }

    @Test func oneConnectionToTheOriginAloneStreamsAcrossChunks() {
        #expect(plan() == .oneStream(from: 0))
        // A resume of a verified prefix goes on from the first missing chunk.
        #expect(plan(have: [0, 1, 2]) == .oneStream(from: 3 * 65_536))
    }

    @Test func chunksGoOneByOneWithPeersSeveralConnectionsOrScatteredChunks() {
        #expect(plan(onlyOrigin: false) == .chunks)
        #expect(plan(onlyOrigin: false, ranges: false) == .chunks)  // peers serve; the origin's stream comes after
        #expect(plan(connections: 4) == .chunks)
        #expect(plan(have: [0, 1, 5]) == .chunks)  // a stream would fetch chunk 5 again
        #expect(plan(have: [3]) == .chunks)
    }

    @Test func aServerWithoutRangesOrAOneChunkFileIsOneWholeStream() {
        #expect(plan(ranges: false, connections: 8) == .oneStream(from: 0))
        #expect(plan(ranges: false, have: [0, 1]) == .oneStream(from: 0))  // verified chunks are read past
        let one = try! ChunkLayout(size: 1000, chunkSize: 65_536)
        #expect(StreamPlan.decide(onlyOrigin: true, acceptsRanges: true, connections: 4, layout: one, have: ChunkSet(capacity: 1)) == .oneStream(from: 0))
    }
}
