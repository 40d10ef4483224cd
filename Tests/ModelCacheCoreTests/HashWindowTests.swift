import Crypto
import Testing
@testable import ModelCacheCore

/// The whole-blob hasher's window: pieces held per chunk, contiguous from the chunk's first byte, one attempt at a
/// time, never more than the cap; what it does not hold is read back from the file.
@Suite struct HashWindowTests {
    static let chunk: Int64 = 16 * 1024

    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    /// Cuts every chunk into pieces of random sizes, delivers the chunks' piece streams interleaved in a random
    /// order (a few chunks "in flight" at once, as connections do), verifies chunks as their last piece lands, and
    /// hashes in order from the window plus the "file" (the bytes) for what it did not hold.
    static func run(size: Int, cap: Int, inFlight: Int, seed: UInt64) throws -> (digest: BlobDigest, memory: Int64, file: Int64, peak: Int) {
        let data = bytes(size, seed: seed)
        let layout = try ChunkLayout(size: Int64(size), chunkSize: chunk)
        var rng = SplitMix64(seed: seed &+ 1)
        var window = HashWindow<[UInt8]>(layout: layout, cap: cap)
        // Pieces of each chunk, in order.
        var streams: [[Range<Int>]] = (0..<layout.count).map { c in
            let r = layout.range(of: c)
            var out: [Range<Int>] = []
            var at = Int(r.lowerBound)
            while at < Int(r.upperBound) {
                let n = min(Int(r.upperBound) - at, 1 + Int(rng.next() % 6000))
                out.append(at..<at + n)
                at += n
            }
            return out
        }
        var pending = Array((0..<layout.count).shuffled(using: &rng))
        var active: [Int] = []
        var verified = Set<Int>()
        var next = 0
        var hasher = SHA256()
        var memory: Int64 = 0, file: Int64 = 0
        var steps = 0
        while next < layout.count {
            steps += 1
            try #require(steps < 1_000_000)
            while active.count < inFlight, let c = pending.popLast() { active.append(c) }
            if !active.isEmpty {
                let i = Int(rng.next() % UInt64(active.count))
                let c = active[i]
                let piece = streams[c].removeFirst()
                window.offer(Array(data[piece]), count: piece.count, at: Int64(piece.lowerBound))
                #expect(window.heldBytes <= cap)
                if streams[c].isEmpty { verified.insert(c); active.remove(at: i) }
            }
            while next < layout.count, verified.contains(next) {
                let (pieces, held) = window.take(chunk: next)
                for p in pieces { hasher.update(data: p) }
                let r = layout.range(of: next)
                hasher.update(data: data[Int(r.lowerBound + held)..<Int(r.upperBound)])
                memory += held
                file += r.upperBound - r.lowerBound - held
                next += 1
            }
        }
        #expect(window.heldBytes == 0)
        #expect(window.trackedChunks == 0)
        return (BlobDigest(hasher.finalize()), memory, file, window.peakHeldBytes)
    }

    @Test(arguments: [1, 4, 9])
    func digestMatchesTheFilesForChunksInAnyOrderWithTheCapHit(inFlight: Int) throws {
        let size = 37 * Int(Self.chunk) + 1234
        let cap = 3 * Int(Self.chunk)
        for seed in 1...5 as ClosedRange<UInt64> {
            let r = try Self.run(size: size, cap: cap, inFlight: inFlight, seed: seed)
            #expect(r.digest == BlobDigest.of(Self.bytes(size, seed: seed)))
            #expect(r.memory + r.file == Int64(size))
            #expect(r.memory > 0)
            #expect(r.peak <= cap)
            if inFlight == 9 { #expect(r.file > 0) }  // 9 chunks in flight cannot fit 3 chunks' worth of memory
        }
    }

    @Test func aWideWindowHashesEveryByteFromMemory() throws {
        let size = 20 * Int(Self.chunk)
        let r = try Self.run(size: size, cap: 64 * Int(Self.chunk), inFlight: 4, seed: 42)
        #expect(r.digest == BlobDigest.of(Self.bytes(size, seed: 42)))
        #expect(r.memory == Int64(size))
        #expect(r.file == 0)
    }

    @Test func aZeroCapHoldsNothing() throws {
        let size = 5 * Int(Self.chunk)
        let r = try Self.run(size: size, cap: 0, inFlight: 2, seed: 7)
        #expect(r.digest == BlobDigest.of(Self.bytes(size, seed: 7)))
        #expect(r.memory == 0)
        #expect(r.peak == 0)
    }

    @Test func aNewAttemptFromTheChunkStartReplacesTheOldPieces() throws {
        let layout = try ChunkLayout(size: 4 * Self.chunk, chunkSize: Self.chunk)
        var w = HashWindow<String>(layout: layout, cap: 1 << 20)
        let start = Self.chunk  // chunk 1
        do { let held = w.offer("bad-a", count: 100, at: start); #expect(held) }
        do { let held = w.offer("bad-b", count: 100, at: start + 100); #expect(held) }
        do { let held = w.offer("good-a", count: 200, at: start); #expect(held) }  // a second attempt (another source) starts over
        #expect(w.heldBytes == 200)
        let t = w.take(chunk: 1)
        #expect(t.pieces == ["good-a"])
        #expect(t.bytes == 200)
        #expect(w.heldBytes == 0)
    }

    @Test func aGapOrAnOverlapDropsTheChunkAndHoldsNothingMore() throws {
        let layout = try ChunkLayout(size: 4 * Self.chunk, chunkSize: Self.chunk)
        var w = HashWindow<String>(layout: layout, cap: 1 << 20)
        do { let held = w.offer("a", count: 100, at: 0); #expect(held) }
        do { let held = w.offer("gap", count: 100, at: 300); #expect(!held) }  // not where the prefix ends
        #expect(w.heldBytes == 0)
        do { let held = w.offer("b", count: 100, at: 100); #expect(!held) }  // the attempt is closed: nothing more of it is held
        #expect(w.take(chunk: 0).bytes == 0)

        do { let held = w.offer("c", count: 100, at: Self.chunk); #expect(held) }
        do { let held = w.offer("d", count: 100, at: Self.chunk + 100); #expect(held) }
        do { let held = w.offer("overlap", count: 100, at: Self.chunk + 50); #expect(!held) }  // a second writer inside the prefix
        #expect(w.take(chunk: 1).bytes == 0)
    }

    @Test func theCapKeepsThePrefixAndStopsTheChunk() throws {
        let layout = try ChunkLayout(size: 4 * Self.chunk, chunkSize: Self.chunk)
        var w = HashWindow<String>(layout: layout, cap: 250)
        do { let held = w.offer("a", count: 100, at: 0); #expect(held) }
        do { let held = w.offer("b", count: 100, at: 100); #expect(held) }
        do { let held = w.offer("c", count: 100, at: 200); #expect(!held) }  // over the cap
        do { let held = w.offer("x", count: 50, at: Self.chunk); #expect(held) }  // another chunk still fits
        do { let held = w.offer("d", count: 10, at: 300); #expect(!held) }  // chunk 0 stays closed even though room is left
        let t = w.take(chunk: 0)
        #expect(t.pieces == ["a", "b"])
        #expect(t.bytes == 200)  // the rest comes from the file
        #expect(w.heldBytes == 50)
        w.abandon(chunk: 1)
        #expect(w.heldBytes == 0)
    }

    @Test func hostilePiecesAreNotHeld() throws {
        let layout = try ChunkLayout(size: 2 * Self.chunk + 10, chunkSize: Self.chunk)
        var w = HashWindow<String>(layout: layout, cap: 1 << 20)
        do { let held = w.offer("neg", count: 10, at: -1); #expect(!held) }
        do { let held = w.offer("past", count: 10, at: 2 * Self.chunk + 10); #expect(!held) }
        do { let held = w.offer("huge", count: 10, at: Int64.max); #expect(!held) }
        do { let held = w.offer("empty", count: 0, at: 0); #expect(!held) }
        do { let held = w.offer("cross", count: 20, at: Self.chunk - 10); #expect(!held) }  // crosses into chunk 1
        do { let held = w.offer("tail", count: 11, at: 2 * Self.chunk); #expect(!held) }  // past the blob's end
        do { let held = w.offer("last", count: 10, at: 2 * Self.chunk); #expect(held) }
        #expect(w.heldBytes == 10)
    }
}
