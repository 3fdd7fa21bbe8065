import Dispatch
import Foundation
import HTTPClient
import Locking

/// Monotonic time in seconds.
func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// User plus system CPU time of the whole process (every thread, Dispatch's and libcurl's included).
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Resident memory from `/proc/self/status`, in bytes: now (VmRSS), the peak so far (VmHWM), and
/// the anonymous (heap, stacks) and file-backed (mostly shared-library text) parts of VmRSS.
struct ResidentMemory {
    var current = 0
    var peak = 0
    var anonymous = 0
    var file = 0

    static func read() -> ResidentMemory {
        var memory = ResidentMemory()
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return memory }
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
            switch fields[0] {
            case "VmRSS:": memory.current = kilobytes * 1024
            case "VmHWM:": memory.peak = kilobytes * 1024
            case "RssAnon:": memory.anonymous = kilobytes * 1024
            case "RssFile:": memory.file = kilobytes * 1024
            default: break
            }
        }
        return memory
    }
}

/// Order statistics of a sample, nearest-rank.
struct Summary: Encodable {
    var count: Int
    var median: Double
    var p90: Double
    var min: Double
    var max: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Int((p * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.min(Swift.max(index, 0), sorted.count - 1)]
        }
        median = rank(0.5)
        p90 = rank(0.9)
        min = sorted.first ?? 0
        max = sorted.last ?? 0
    }
}

/// Runs `body` `count` times and returns each run's wall time in seconds.
func timeRepeatedly(_ count: Int, _ body: () -> Void) -> [Double] {
    (0..<count).map { _ in
        let start = monotonicSeconds()
        body()
        return monotonicSeconds() - start
    }
}

func formatMilliseconds(_ seconds: Double) -> String {
    String(format: "%.3f ms", seconds * 1000)
}

func formatMiB(_ bytes: Int) -> String {
    String(format: "%.1f MiB", Double(bytes) / 1_048_576)
}

func formatKiB(_ bytes: Int) -> String {
    String(format: "%.1f KiB", Double(bytes) / 1024)
}

/// Parses a Prometheus-style duration (`0s`, `250ms`, `1m30s`) or a plain number of seconds.
func parseDuration(_ text: String) -> Duration? {
    if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64((seconds * 1000).rounded())) }
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    var rest = Substring(text)
    var total: Int64 = 0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let digits = rest.prefix { $0.isNumber }
        guard let value = Int64(digits) else { return nil }
        rest = rest.dropFirst(digits.count)
        guard let (unit, factor) = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) })
        else { return nil }
        rest = rest.dropFirst(unit.count)
        total += value * factor
    }
    return .milliseconds(total)
}

/// Writes a value as pretty JSON to `path`.
func writeJSON(_ value: some Encodable, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: path))
}

/// Prints and flushes, so a script reading our stdout through a pipe sees lines at once.
func say(_ text: String) {
    print(text)
    fflush(nil)
}

/// Suspends until SIGINT or SIGTERM; returns the signal's name.
func waitForTerminationSignal() async -> String {
    await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
        let resumed = LockedValue(false)
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let first = resumed.withLock { done -> Bool in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: name) }
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGPIPE, SIG_IGN)
        retainedSignalSources.withLock { $0 += sources }
    }
}

/// Keeps the signal sources alive for the life of the process.
private let retainedSignalSources = LockedValue<[any DispatchSourceSignal]>([])
