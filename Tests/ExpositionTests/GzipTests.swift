import CZlib
import Exposition
import Foundation
import Testing

/// Inflates a gzip (or zlib) stream with zlib's automatic header detection (windowBits 15 + 32).
private func gunzip(_ data: [UInt8]) throws -> [UInt8] {
    var stream = z_stream()
    let initStatus = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    guard initStatus == Z_OK else { throw GzipError(code: initStatus, description: "inflateInit2 failed") }
    defer { inflateEnd(&stream) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    var status = Z_OK
    try data.withUnsafeBufferPointer { input in
        stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
        stream.avail_in = uInt(input.count)
        repeat {
            let produced = chunk.withUnsafeMutableBufferPointer { buffer -> Int in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                status = inflate(&stream, Z_NO_FLUSH)
                return buffer.count - Int(stream.avail_out)
            }
            guard status == Z_OK || status == Z_STREAM_END else {
                throw GzipError(code: status, description: "inflate failed")
            }
            output.append(contentsOf: chunk[0..<produced])
        } while status != Z_STREAM_END
        guard stream.avail_in == 0 else { throw GzipError(code: Z_DATA_ERROR, description: "trailing bytes after the gzip member") }
    }
    return output
}

/// Deterministic pseudo-random bytes (xorshift), so the test data does not compress away.
private func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

private func littleEndianUInt32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.reversed().reduce(0) { ($0 << 8) | UInt32($1) }
}

@Suite("Gzip")
struct GzipTests {
    @Test func roundTripOfText() throws {
        let text = Array("# HELP prefect_up 1 if the last poll fully succeeded.\n# TYPE prefect_up gauge\nprefect_up 1\n".utf8)
        let compressed = try Gzip.compress(text)
        #expect(try gunzip(compressed) == text)
    }

    @Test func outputIsAStandardGzipMember() throws {
        let input = Array(repeating: Array("prefect_flow_runs{work_pool=\"default\"} 1\n".utf8), count: 100).flatMap { $0 }
        let compressed = try Gzip.compress(input)
        // Magic, deflate method, no flags.
        #expect(Array(compressed.prefix(4)) == [0x1F, 0x8B, 0x08, 0x00])
        // Trailer: CRC-32 of the input, then its length modulo 2^32, both little-endian.
        let expectedCRC = input.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        #expect(littleEndianUInt32(compressed[(compressed.count - 8)..<(compressed.count - 4)]) == expectedCRC)
        #expect(littleEndianUInt32(compressed[(compressed.count - 4)...]) == UInt32(input.count))
        #expect(compressed.count < input.count / 10)
    }

    @Test func emptyInput() throws {
        let compressed = try Gzip.compress([])
        // 10-byte header, an empty final deflate block (2 bytes), 8-byte trailer.
        #expect(compressed.count == 20)
        #expect(Array(compressed.prefix(2)) == [0x1F, 0x8B])
        #expect(Array(compressed.suffix(8)) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try gunzip(compressed) == [])
    }

    @Test func oneMegabyteOfIncompressibleData() throws {
        let input = pseudoRandomBytes(count: 1 << 20, seed: 0x9E37_79B9_7F4A_7C15)
        let compressed = try Gzip.compress(input)
        #expect(try gunzip(compressed) == input)
        // Stored blocks: a little larger than the input, never wildly so.
        #expect(compressed.count > input.count)
        #expect(compressed.count < input.count + input.count / 100)
    }

    @Test func oneMegabyteOfMetricsText() throws {
        var text = ""
        var index = 0
        while text.utf8.count < 1 << 20 {
            text += "prefect_flow_runs{work_pool=\"pool-\(index % 17)\",deployment=\"flow/deploy-\(index)\",state_type=\"RUNNING\"} \(index % 5)\n"
            index += 1
        }
        let input = Array(text.utf8)
        let compressed = try Gzip.compress(input)
        #expect(try gunzip(compressed) == input)
        #expect(compressed.count < input.count / 5)
    }

    @Test(arguments: [0, 1, 6, 9] as [Int32])
    func everyLevelRoundTrips(level: Int32) throws {
        let input = pseudoRandomBytes(count: 10_000, seed: 42) + Array(repeating: 7, count: 10_000)
        #expect(try gunzip(Gzip.compress(input, level: level)) == input)
    }

    @Test func levelOutOfRangeThrows() {
        #expect(throws: GzipError(code: Z_STREAM_ERROR, description: "gzip level must be between 0 and 9, got 10")) {
            try Gzip.compress([1, 2, 3], level: 10)
        }
        #expect(throws: GzipError.self) { try Gzip.compress([1], level: -2) }
    }

    @Test func gzipCommandLineToolAgrees() throws {
        let input = Array("hello, gzip\n".utf8) + pseudoRandomBytes(count: 4096, seed: 7)
        let compressed = try Gzip.compress(input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-d", "-c"]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(compressed))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(Array(output) == input)
    }
}
