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

    func plan(sole: StreamPlan.Sole? = .origin, ranges: Bool = true, connections: Int = 1, have chunks: [Int] = []) -> StreamPlan {
        StreamPlan.decide(sole: sole, acceptsRanges: ranges, connections: connections, layout: layout, have: have(chunks))
    }

    @Test func oneConnectionToTheOriginAloneStreamsAcrossChunks() {
        #expect(plan() == .oneStream(from: 0))
        // A resume of a verified prefix goes on from the first missing chunk.
        #expect(plan(have: [0, 1, 2]) == .oneStream(from: 3 * 65_536))
    }

    @Test func chunksGoOneByOneWithPeersSeveralConnectionsOrScatteredChunks() {
        #expect(plan(sole: nil) == .chunks)
        #expect(plan(sole: nil, ranges: false) == .chunks)  // peers serve; the origin's stream comes after
        #expect(plan(connections: 4) == .chunks)
        #expect(plan(have: [0, 1, 5]) == .chunks)  // a stream would fetch chunk 5 again
        #expect(plan(have: [3]) == .chunks)
    }

    @Test func aServerWithoutRangesOrAOneChunkFileIsOneWholeStream() {
        #expect(plan(ranges: false, connections: 8) == .oneStream(from: 0))
        #expect(plan(ranges: false, have: [0, 1]) == .oneStream(from: 0))  // verified chunks are read past
        let one = try! ChunkLayout(size: 1000, chunkSize: 65_536)
        #expect(StreamPlan.decide(sole: .origin, acceptsRanges: true, connections: 4, layout: one, have: ChunkSet(capacity: 1)) == .oneStream(from: 0))
    }

    @Test func aPeerThatIsTheOnlySourceIsOneStreamWhateverTheConnections() {
        #expect(plan(sole: .peer, connections: 4) == .oneStream(from: 0))
        #expect(plan(sole: .peer, connections: 1) == .oneStream(from: 0))
        #expect(plan(sole: .peer, connections: 4, have: [0, 1]) == .oneStream(from: 2 * 65_536))
        // Scattered verified chunks go chunk by chunk, as from the origin.
        #expect(plan(sole: .peer, connections: 4, have: [0, 4]) == .chunks)
        #expect(plan(sole: .peer, have: [0, 4]) == .chunks)
    }
}
