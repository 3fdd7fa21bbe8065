public import Exposition
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics, read from `/proc/self` (Linux). Missing files yield no series.
public enum ProcessMetrics {
    static let cpuSeconds = FamilyDescriptor(
        "process_cpu_seconds_total", .counter, help: "Total user and system CPU time spent in seconds.")
    static let virtualMemory = FamilyDescriptor("process_virtual_memory_bytes", .gauge, help: "Virtual memory size in bytes.")
    static let residentMemory = FamilyDescriptor("process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.")
    static let startTime = FamilyDescriptor(
        "process_start_time_seconds", .gauge, help: "Start time of the process since unix epoch in seconds.")
    static let openFDs = FamilyDescriptor("process_open_fds", .gauge, help: "Number of open file descriptors.")
    static let maxFDs = FamilyDescriptor("process_max_fds", .gauge, help: "Maximum number of open file descriptors.")
    /// Every `process_*` family, in the order served.
    public static let descriptors = [cpuSeconds, virtualMemory, residentMemory, startTime, openFDs, maxFDs]

    private static let clockTicks: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    private static let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

    private static let bootTime: Double? = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingWhitespace())
        }
        return nil
    }()

    static func families() -> [MetricFamily] {
        var families: [MetricFamily] = []
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")")
        {
            // Fields after "(comm)": state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ").map(String.init)
            func field(_ number: Int) -> Double? {
                let index = number - 3
                return fields.indices.contains(index) ? Double(fields[index]) : nil
            }
            if let user = field(14), let system = field(15) {
                families.append(cpuSeconds.family([Metric(value: (user + system) / clockTicks)]))
            }
            if let virtual = field(23) {
                families.append(virtualMemory.family([Metric(value: virtual)]))
            }
            if let resident = field(24) {
                families.append(residentMemory.family([Metric(value: resident * pageSize)]))
            }
            if let start = field(22), let bootTime {
                families.append(startTime.family([Metric(value: bootTime + start / clockTicks)]))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            families.append(openFDs.family([Metric(value: Double(descriptors.count))]))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            families.append(maxFDs.family([Metric(value: Double(limit.rlim_cur))]))
        }
        return families
    }
}
