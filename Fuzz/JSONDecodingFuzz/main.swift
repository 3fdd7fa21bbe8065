// libFuzzer entry point for the Prefect JSON decoding (Sources/PrefectAPI: Models.swift,
// Decoding.swift, Timestamp.swift and JSONTextRepair.swift, compiled into this binary by build.sh).
//
// Every input is decoded the way PrefectClient decodes a response body (repair, then
// JSONDecoder) as each model the exporter reads, and parsed as a timestamp. Beyond "never
// crashes, never hangs", it checks:
//   - the repair yields valid UTF-8 with no lone surrogate escape, and repairing again changes nothing;
//   - the repair never turns a document that decoded into one that does not;
//   - a parsed timestamp is finite and survives format -> parse.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonDecodingFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let repaired = JSONTextRepair.repair(bytes)
    if let repaired {
        precondition(String(decoding: repaired, as: UTF8.self).utf8.elementsEqual(repaired), "repair left invalid UTF-8")
        precondition(JSONTextRepair.repair(repaired) == nil, "repair is not idempotent")
    }
    let body = Data(repaired ?? bytes)
    let decoder = JSONDecoder()
    let flowRuns = try? decoder.decode([FlowRun].self, from: body)
    _ = try? decoder.decode([WorkPool].self, from: body)
    _ = try? decoder.decode([WorkQueue].self, from: body)
    _ = try? decoder.decode([Deployment].self, from: body)
    _ = try? decoder.decode([Worker].self, from: body)
    _ = try? decoder.decode([Flow].self, from: body)
    _ = try? decoder.decode(Int.self, from: body)
    _ = try? decoder.decode(String.self, from: body)
    if repaired != nil, (try? decoder.decode([FlowRun].self, from: Data(bytes))) != nil {
        precondition(flowRuns != nil, "the repair broke a document that decoded")
    }
    if let runs = flowRuns {
        for run in runs {
            for time in [run.startTime, run.endTime, run.expectedStartTime, run.nextScheduledStartTime] {
                if let time { precondition(time.isFinite, "non-finite timestamp") }
            }
        }
    }

    let text = String(decoding: bytes.prefix(64), as: UTF8.self)
    if let seconds = PrefectTimestamp.parse(text) {
        precondition(seconds.isFinite, "non-finite timestamp from \(text.debugDescription)")
        let formatted = PrefectTimestamp.format(seconds)
        guard let again = PrefectTimestamp.parse(formatted) else {
            preconditionFailure("format(\(seconds)) = \(formatted) does not parse")
        }
        precondition(abs(again - seconds) < 1e-3, "\(text.debugDescription) -> \(seconds) -> \(formatted) -> \(again)")
    }
    return 0
}
