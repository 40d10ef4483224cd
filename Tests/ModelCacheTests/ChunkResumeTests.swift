import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// An interrupted body continues from the byte where it stopped, from the same source and file.
@Suite(.serialized) struct ChunkResumeTests {
    @Test func originDroppingEvery3MiBUnderA4MiBChunkStillCompletesWithoutRefetching() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(16 << 20, seed: 17)
        origin.serve("/model.bin", bytes)
        origin.inject(.dropAfter(bytes: 3 << 20, times: 10_000))  // every GET is cut after 3 MiB of body
        let env = try TestEnvironment()
        let r = FetchRequest(url: origin.url("/model.bin"), expected: nil, connections: 4, chunkSize: 4 << 20)
        let result = try await env.engine.fetch(r)
        #expect(result.sha256 == BlobDigest.of(bytes))
        #expect(env.contents(result.path) == bytes)
        #expect(origin.gets >= 8)  // each 4 MiB chunk took a cut first GET and a resumed one
        // No chunk started again from its first byte: each chunk's GETs ask for non-decreasing offsets, and
        // each chunk's first byte was asked for once. (How many bytes a cut loses in flight depends on the
        // machine's load, so the byte count served is not the measure.)
        let starts = origin.getStarts
        for chunk in Int64(0)..<4 {
            let mine = starts.filter { $0 / (4 << 20) == chunk }
            #expect(mine.first == chunk * (4 << 20), "chunk \(chunk) began at its first byte: \(mine)")
            #expect(mine == mine.sorted(), "chunk \(chunk) never went back: \(mine)")
            #expect(mine.filter { $0 == chunk * (4 << 20) }.count == 1, "chunk \(chunk) started once: \(mine)")
        }
        await env.close(); await origin.stop()
    }

    @Test func singleStreamResumesWithARangeFromTheLastWrittenByte() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(3 << 20, seed: 5)
        origin.serve("/one-chunk.bin", bytes)  // one chunk: the engine streams it in one GET
        origin.inject(.dropAfter(bytes: 1 << 20, times: 10_000))
        let env = try TestEnvironment()
        let r = FetchRequest(url: origin.url("/one-chunk.bin"), expected: BlobDigest.of(bytes), connections: 1, chunkSize: 4 << 20)
        let result = try await env.engine.fetch(r)
        #expect(result.sha256 == BlobDigest.of(bytes))
        #expect(env.contents(result.path) == bytes)
        // Completing at all proves the resume (every GET is cut after 1 MiB). Each GET after the first asks
        // from where the last one stopped: the offsets never go back, 0 is asked for once, and the last GET
        // starts past 2 MiB, since no GET carries more than 1 MiB.
        let starts = origin.getStarts
        #expect(origin.gets >= 3)
        #expect(starts.first == 0)
        #expect(starts == starts.sorted(), "offsets never go back: \(starts)")
        #expect(starts.filter { $0 == 0 }.count == 1, "the body was not started again: \(starts)")
        #expect((starts.last ?? 0) >= 2 << 20, "\(starts)")
        await env.close(); await origin.stop()
    }

    @Test func aResumeThatGetsNothingFallsBackToTheSchedulersRetries() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(1 << 20, seed: 9)
        origin.serve("/f", bytes)
        origin.inject(.failFirst(status: 503, times: 3))
        let env = try TestEnvironment()
        let result = try await env.engine.fetch(env.request(origin.url("/f")))
        #expect(env.contents(result.path) == bytes)
        await env.close(); await origin.stop()
    }
}
