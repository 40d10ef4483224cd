import Foundation

/// What a progress line says: the file, then either a state word (waiting) or the transfer's figures.
public enum ProgressLine {
    public enum Phase: Sendable, Equatable {
        /// No byte flows: `connecting`, `waiting for the origin: connection refused, retrying`, `paused: offline`.
        case waiting(String)
        case transferring
    }

    /// The one line a terminal shows, fitted to `width` columns (one is left free so the terminal never wraps):
    /// the least useful parts go first (sources, the bar, the byte counts), then the name is shortened.
    public static func fitted(name: String, phase: Phase, meter: TransferMeter, sources: [String: Int64], now: Double,
                              width: Int) -> String {
        let room = max(10, min(width, 1000) - 1)
        let shortName = shorten(name, to: min(32, room))
        guard case .transferring = phase, meter.first != nil else {
            let state: String = if case .waiting(let s) = phase { s } else { "connecting" }
            let line = shortName + "  " + state
            return line.count <= room ? line : String(line.prefix(room - 1)) + "…"
        }
        // No byte for a while: say so (the engine is retrying its sources), keeping how far it got.
        if let quiet = meter.stalled(now: now) {
            let done = meter.fraction.map { "\(Int(($0 * 100).rounded(.down)))%  " } ?? "\(ProgressText.bytes(meter.position))  "
            let line = "\(shortName)  \(done)no bytes for \(Int(quiet)) s, retrying"
            return line.count <= room ? line : String(line.prefix(room - 1)) + "…"
        }
        var parts = segments(meter: meter, sources: sources, now: now)
        var showBar = meter.fraction != nil
        let barPriority = 45
        func line(bar: Int) -> String {
            var items = [shortName]
            if bar > 0 { items.append(barText(meter.fraction ?? 0, width: bar)) }
            items += parts.map(\.text)
            return items.joined(separator: "  ")
        }
        // Drop the least useful part (the bar counts as one) until the line fits, the bar at least 10 columns wide.
        for _ in 0...parts.count + 1 {
            let fixed = line(bar: 0).count
            if showBar, room - fixed - 2 >= 10 { return line(bar: min(30, room - fixed - 2)) }
            if !showBar, fixed <= room { return line(bar: 0) }
            let weakest = parts.indices.min { parts[$0].priority < parts[$1].priority }
            if showBar, weakest.map({ parts[$0].priority > barPriority }) ?? true {
                showBar = false
            } else if let weakest {
                parts.remove(at: weakest)
            } else {
                break
            }
        }
        return shorten(line(bar: 0), to: room)
    }

    /// A line for a log (stderr not a terminal): no bar, no control characters.
    public static func plain(name: String, phase: Phase, meter: TransferMeter, sources: [String: Int64], now: Double) -> String {
        guard case .transferring = phase, meter.first != nil else {
            let state: String = if case .waiting(let s) = phase { s } else { "connecting" }
            return "\(name): \(state)"
        }
        if let quiet = meter.stalled(now: now) {
            return "\(name): " + (meter.fraction.map { "\(Int(($0 * 100).rounded(.down)))%" } ?? ProgressText.bytes(meter.position))
                + ", no bytes for \(Int(quiet)) s, retrying"
        }
        return "\(name): " + segments(meter: meter, sources: sources, now: now).map(\.text).joined(separator: ", ")
    }

    struct Segment {
        var text: String
        var priority: Int
    }

    /// The figures, in display order, each with how much it is worth keeping on a narrow terminal.
    static func segments(meter: TransferMeter, sources: [String: Int64], now: Double) -> [Segment] {
        var s: [Segment] = []
        if let f = meter.fraction { s.append(Segment(text: "\(Int((f * 100).rounded(.down)))%", priority: 90)) }
        let size = meter.total.map { "\(ProgressText.bytes(meter.position)) / \(ProgressText.bytes($0))" } ?? ProgressText.bytes(meter.position)
        s.append(Segment(text: size, priority: meter.total == nil ? 95 : 50))
        let rate = meter.rate(now: now)
        s.append(Segment(text: rate.map { ProgressText.bytes(Int64($0)) + "/s" } ?? "-- B/s", priority: 80))
        if meter.total != nil {
            s.append(Segment(text: "ETA " + (meter.eta(now: now).map { ProgressText.duration(seconds: $0) } ?? "--:--"), priority: 70))
        }
        let from = sourceWords(sources)
        if !from.isEmpty { s.append(Segment(text: from, priority: 40)) }
        return s
    }

    static func barText(_ fraction: Double, width: Int) -> String {
        let inner = max(1, width - 2)
        let filled = min(inner, max(0, Int(fraction * Double(inner))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: inner - filled) + "]"
    }

    /// `peers 2 · origin`: which kinds of source sent bytes so far.
    public static func sourceWords(_ sources: [String: Int64]) -> String {
        let peers = sources.filter { $0.key.hasPrefix("peer ") && $0.value > 0 }.count
        var words: [String] = []
        if peers > 0 { words.append(peers == 1 ? "peer 1" : "peers \(peers)") }
        if (sources["origin"] ?? 0) > 0 { words.append("origin") }
        return words.joined(separator: " · ")
    }

    /// `text` cut to `limit` characters, its middle replaced by `…` (both ends of a file name say the most).
    public static func shorten(_ text: String, to limit: Int) -> String {
        guard limit > 0 else { return "" }
        guard text.count > limit else { return text }
        if limit == 1 { return "…" }
        let head = (limit - 1) / 2 + (limit - 1) % 2
        let tail = limit - 1 - head
        return String(text.prefix(head)) + "…" + String(text.suffix(tail))
    }

    /// The name a progress line gives a URL: `org/repo: path/in/repo` for a Hugging Face file, else the last path
    /// component (percent-decoded), else the host.
    public static func displayName(url: String) -> String {
        if let (repo, file) = hubFile(url: url) { return "\(repo.id): \(file)" }
        let noQuery = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        let afterScheme = noQuery.range(of: "://").map { String(noQuery[$0.upperBound...]) } ?? noQuery
        let parts = afterScheme.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if let last = parts.dropFirst().last(where: { !$0.isEmpty }) { return last.removingPercentEncoding ?? last }
        return parts.first ?? url
    }

    /// The Hub repository and file path of a `…/resolve/REV/FILE` URL (any host: the Hub or a node's endpoint).
    public static func hubFile(url: String) -> (repo: HubRepo, file: String)? {
        let noQuery = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        guard let scheme = noQuery.range(of: "://"),
              let slash = noQuery[scheme.upperBound...].firstIndex(of: "/") else { return nil }
        if case .resolve(let repo, _, let path)? = HubRoute.parse(path: String(noQuery[slash...])) { return (repo, path) }
        return nil
    }
}

/// The line printed when a transfer ends: what came, how fast, from where.
public enum TransferSummary {
    /// `model.bin: 1.0 GiB in 00:12 (85.3 MiB/s) · origin 70.0 MiB · peer b 954.0 MiB · from the LAN: 93%`
    public static func line(name: String, size: Int64, seconds: Double, moved: Int64, sources: [String: Int64], cached: Bool) -> String {
        if cached { return "\(name): \(ProgressText.bytes(size)), already in the cache" }
        var text = "\(name): \(ProgressText.bytes(size)) in \(ProgressText.duration(seconds: seconds))"
        if seconds > 0, moved > 0 { text += " (\(ProgressText.bytes(Int64(Double(moved) / seconds)))/s)" }
        let received = sources.filter { $0.value > 0 }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        for (source, n) in received { text += " · \(source) \(ProgressText.bytes(n))" }
        if let share = lanShare(sources) { text += " · from the LAN: \(share)%" }
        return text
    }

    /// Percent of the received bytes that came from peers (rounded down), nil when nothing was received.
    public static func lanShare(_ sources: [String: Int64]) -> Int? {
        let all = sources.values.reduce(Int64(0)) { $0 &+ max(0, $1) }
        guard all > 0 else { return nil }
        let lan = sources.filter { $0.key.hasPrefix("peer ") }.values.reduce(Int64(0)) { $0 &+ max(0, $1) }
        return Int((Double(lan) * 100 / Double(all)).rounded(.down))
    }
}
