// libFuzzer entry point for the Prefect JSON decoding (Sources/PrefectAPI: Models.swift,
// Decoding.swift, Timestamp.swift and JSONTextRepair.swift, compiled into this binary by build.sh).
//
// Every input is decoded the way PrefectClient decodes a response body (repair, then
// JSONDecoder) as each model the exporter reads, and parsed as a timestamp. Beyond "never
// crashes, never hangs", it checks:
//   - the repair yields valid UTF-8 with no lone surrogate escape, and repairing again changes nothing;
//   - the repair never breaks a document that already decoded, nor changes a value read from it
//     (it may only fill in a field that decoded as nil because of a lone surrogate);
//   - every parsed timestamp (the input's first 64 bytes, and each time of each decoded run) is finite,
//     and formatting it gives text that parses back to the same instant. `format` writes
//     four-digit years, so for an instant outside the years 0000-9999 (a timestamp of year 0000
//     or 9999 with an offset) its text must instead fail to parse: never parse as another time.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonDecodingFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let repaired = JSONTextRepair.repair(bytes)
    if let repaired {
        require(String(decoding: repaired, as: UTF8.self).utf8.elementsEqual(repaired), "repair left invalid UTF-8")
        require(JSONTextRepair.repair(repaired) == nil, "repair is not idempotent")
    }
    let body = Data(repaired ?? bytes)
    let flowRuns = decode([FlowRun].self, body, original: bytes, repaired: repaired)
    decode([WorkPool].self, body, original: bytes, repaired: repaired)
    decode([WorkQueue].self, body, original: bytes, repaired: repaired)
    decode([Deployment].self, body, original: bytes, repaired: repaired)
    decode([Worker].self, body, original: bytes, repaired: repaired)
    decode([Flow].self, body, original: bytes, repaired: repaired)
    decode(Int.self, body, original: bytes, repaired: repaired)
    decode(String.self, body, original: bytes, repaired: repaired)
    for run in flowRuns ?? [] {
        for time in [run.startTime, run.endTime, run.expectedStartTime, run.nextScheduledStartTime] {
            if let time { checkFormatRoundTrip(time, from: "flow run \(run.id.debugDescription)") }
        }
    }

    let text = String(decoding: bytes.prefix(64), as: UTF8.self)
    if let seconds = PrefectTimestamp.parse(text) {
        checkFormatRoundTrip(seconds, from: text.debugDescription)
    }
    return 0
}

/// Decodes `body` (the repaired text when there was something to repair) as `T`. When the
/// original text decoded too, the repair must not have broken it, nor changed a value that was
/// read: only a field that the original text left nil (or empty, for `WorkPool.type`) may have
/// gained a value, which is what the repair is for (a lone surrogate in an optional field).
@discardableResult
func decode<T: Decodable>(_ type: T.Type, _ body: Data, original: [UInt8], repaired: [UInt8]?) -> T? {
    let decoder = JSONDecoder()
    let value = try? decoder.decode(T.self, from: body)
    if repaired != nil, let unrepaired = try? decoder.decode(T.self, from: Data(original)) {
        guard let value else { fatalError("the repair broke a document that decoded as \(T.self)") }
        require(
            refines(value, unrepaired),
            "the repair changed a value read from a document that decoded as \(T.self): \(unrepaired) -> \(value)")
    }
    return value
}

/// Whether `new` equals `old` except where `old` holds nil or an empty string.
func refines(_ new: Any, _ old: Any) -> Bool {
    let oldMirror = Mirror(reflecting: old), newMirror = Mirror(reflecting: new)
    if oldMirror.displayStyle == .optional, oldMirror.children.isEmpty { return true }
    if let text = old as? String, text.isEmpty { return true }
    guard oldMirror.displayStyle == newMirror.displayStyle, oldMirror.children.count == newMirror.children.count else {
        return false
    }
    if oldMirror.children.isEmpty { return String(reflecting: new) == String(reflecting: old) }
    return zip(newMirror.children, oldMirror.children).allSatisfy { $0.label == $1.label && refines($0.value, $1.value) }
}

/// The instants `format` can write: 0000-01-01T00:00:00Z up to (excluding) 10000-01-01T00:00:00Z.
let formattable = Double(PrefectTimestamp.daysFromCivil(year: 0, month: 1, day: 1) * 86_400)
    ..< Double(PrefectTimestamp.daysFromCivil(year: 10_000, month: 1, day: 1) * 86_400)

func checkFormatRoundTrip(_ seconds: Double, from source: @autoclosure () -> String) {
    require(seconds.isFinite, "non-finite timestamp \(seconds) from \(source())")
    let formatted = PrefectTimestamp.format(seconds)
    let again = PrefectTimestamp.parse(formatted)
    // format rounds to microseconds; the rest is Double's precision at ~3e11 seconds (~6e-5).
    if formattable.contains(seconds) {
        guard let again else { fatalError("\(source()) -> \(seconds) -> format \(formatted) does not parse") }
        require(abs(again - seconds) < 1e-3, "\(source()) -> \(seconds) -> \(formatted) -> \(again)")
    } else if let again {
        require(abs(again - seconds) < 1e-3, "\(source()) -> \(seconds) (outside format's years) -> \(formatted) parses as another time \(again)")
    }
}
