import ModelCacheCore
import Synchronization

/// The origin's HEAD probe for one fetch, running on its own so the fetch can wait for it only a while (protocol §8:
/// the grace) and look at its answer again before commit. Cancelled by its owner when the fetch ends.
final class PendingProbe: Sendable {
    private let answer = Mutex<Result<OriginInfo, any Error>?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let done: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation

    init(_ body: @escaping @Sendable () async throws -> OriginInfo, onAnswer: @escaping @Sendable (Result<OriginInfo, any Error>) -> Void) {
        (done, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let t = Task { [self] in
            let r: Result<OriginInfo, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            self.answer.withLock { $0 = r }
            onAnswer(r)
            self.signal.yield()
            self.signal.finish()
        }
        task.withLock { $0 = t }
    }

    /// The answer once it is there, waiting at most `limit` (nil: until it is there). nil: no answer yet.
    func wait(upTo limit: Duration?) async -> Result<OriginInfo, any Error>? {
        if let a = peek() { return a }
        let done = self.done
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in done { return } }
            if let limit { group.addTask { try? await Task.sleep(for: limit) } }
            _ = await group.next()
            group.cancelAll()
        }
        return peek()
    }

    /// The answer if it has come.
    func peek() -> Result<OriginInfo, any Error>? { answer.withLock { $0 } }

    func cancel() { task.withLock { $0 }?.cancel() }
}
