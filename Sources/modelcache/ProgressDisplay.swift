import Foundation
import ModelCacheCore
import Synchronization

/// Shows a transfer's progress on stderr, never on stdout (stdout holds only the result):
/// - stderr a terminal: one line, fitted to the terminal's width, redrawn 4 times a second (so a wait shows its
///   state word and a stall shows its rate falling);
/// - stderr a file or a pipe: a plain line every `MODELCACHE_PROGRESS_SECONDS` (default 10) seconds, no control
///   characters;
/// - `--quiet`: nothing.
/// Notes (pauses, retries) are printed on their own line in both modes; `finish` prints the summary line.
final class ProgressDisplay: Sendable {
    enum Mode: Sendable { case terminal, log, quiet }

    struct State {
        var meter = TransferMeter()
        var phase = ProgressLine.Phase.waiting("connecting")
        var waitingSince: Double = 0
        var sources: [String: Int64] = [:]
        var lastPlain: Double = 0
        var drawn = false
        var finished = false
    }

    let mode: Mode
    let name: String
    let plainEvery: Double
    private let start = ContinuousClock.now
    private let state = Mutex(State())
    private let timer = Mutex<Task<Void, Never>?>(nil)

    init(name: String, quiet: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.name = name
        self.mode = quiet ? .quiet : Terminal.stderrIsTTY ? .terminal : .log
        let every = environment["MODELCACHE_PROGRESS_SECONDS"].flatMap(Double.init) ?? 10
        self.plainEvery = every.isFinite && every >= 0.1 && every <= 86_400 ? every : 10
        guard mode != .quiet else { return }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                guard let self else { return }
                self.tick()
            }
        }
        timer.withLock { $0 = task }
    }

    deinit { timer.withLock { $0?.cancel() } }

    var now: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Bytes of the file present now (resumed ones included: the first count is the baseline), of `total`.
    func update(downloaded: Int64, total: Int64?, sources: [String: Int64] = [:]) {
        let t = now
        state.withLock { s in
            s.meter.record(bytes: downloaded, total: total, at: t)
            if !sources.isEmpty { s.sources = sources }
            s.phase = .transferring
        }
    }

    /// No byte flows: say why (`connecting`, `paused: offline`, `waiting for the origin: …, retrying`).
    func waiting(_ word: String) {
        let t = now
        state.withLock { s in
            if s.phase != .waiting(word) { s.waitingSince = t }
            s.phase = .waiting(word)
        }
    }

    /// A line of its own above the progress line (a pause, a retry): `modelcache: <text>`.
    func note(_ text: String) {
        guard mode != .quiet else { return }
        state.withLock { s in
            if s.drawn { Terminal.write("\r\u{1B}[2K") }
            Terminal.write("modelcache: \(text)\n")
            s.drawn = false
        }
    }

    private func tick() {
        let t = now
        state.withLock { s in
            guard !s.finished else { return }
            switch mode {
            case .terminal:
                var phase = s.phase
                // A wait longer than 2 s shows for how long: a host that never answers is not a frozen tool.
                if case .waiting(let word) = phase, t - s.waitingSince >= 2 { phase = .waiting(word + " · \(Int(t - s.waitingSince)) s") }
                let line = ProgressLine.fitted(name: name, phase: phase, meter: s.meter, sources: s.sources, now: t,
                                               width: Terminal.columns)
                Terminal.write("\r\u{1B}[2K" + line)
                s.drawn = true
            case .log:
                guard t - s.lastPlain >= plainEvery else { return }
                s.lastPlain = t
                Terminal.write("modelcache: " + ProgressLine.plain(name: name, phase: s.phase, meter: s.meter, sources: s.sources, now: t) + "\n")
            case .quiet:
                return
            }
        }
    }

    /// Stops drawing and clears the line; prints `summary` (unless quiet).
    func finish(summary: String? = nil) {
        timer.withLock { $0?.cancel() }
        state.withLock { s in
            if s.drawn { Terminal.write("\r\u{1B}[2K") }
            s.drawn = false
            s.finished = true
        }
        if let summary, mode != .quiet { Terminal.write(summary + "\n") }
    }

    /// Bytes this run moved, as the meter saw them.
    var movedThisRun: Int64 { state.withLock { $0.meter.movedThisRun } }

    /// The end-of-transfer line for `result`.
    func summary(of result: any FetchResultLike) -> String {
        let moved = movedThisRun > 0 ? movedThisRun : result.sources.values.reduce(0, +)
        return TransferSummary.line(name: name, size: result.size, seconds: result.seconds, moved: moved, sources: result.sources,
                                    cached: result.cached)
    }
}

/// What the summary needs of a fetch's result.
protocol FetchResultLike {
    var size: Int64 { get }
    var seconds: Double { get }
    var sources: [String: Int64] { get }
    var cached: Bool { get }
}
