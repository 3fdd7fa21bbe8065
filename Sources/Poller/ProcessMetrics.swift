import Exposition
import Foundation

/// The standard `process_*` metrics, read from `/proc/self` (Linux). Missing files yield no series.
enum ProcessMetrics {
    private static let clockTicks: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    private static let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

    private static let bootTime: Double? = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
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
                families.append(gauge(
                    "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (user + system) / clockTicks,
                    type: .counter))
            }
            if let virtual = field(23) {
                families.append(gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", virtual))
            }
            if let resident = field(24) {
                families.append(gauge("process_resident_memory_bytes", "Resident memory size in bytes.", resident * pageSize))
            }
            if let start = field(22), let bootTime {
                families.append(gauge(
                    "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                    bootTime + start / clockTicks))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            families.append(gauge("process_open_fds", "Number of open file descriptors.", Double(descriptors.count)))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            families.append(gauge("process_max_fds", "Maximum number of open file descriptors.", Double(limit.rlim_cur)))
        }
        return families
    }

    private static func gauge(_ name: String, _ help: String, _ value: Double, type: MetricType = .gauge) -> MetricFamily {
        MetricFamily(name: name, help: help, type: type, metrics: [Metric(value: value)])
    }
}
