import CZlib

/// Why gzip compression failed; ``description`` carries zlib's own message.
public struct GzipError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The zlib status code (for example `Z_MEM_ERROR`, `Z_STREAM_ERROR`).
    public let code: Int32
    /// A one-line message.
    public let description: String

    /// Creates an error from a zlib status code and a message.
    public init(code: Int32, description: String) {
        self.code = code
        self.description = description
    }
}

/// Gzip compression with zlib.
public enum Gzip {
    /// Compresses bytes into one standard gzip member (RFC 1952), as `Content-Encoding: gzip` expects.
    ///
    /// - Parameters:
    ///   - bytes: the data to compress; may be empty.
    ///   - level: 0 (store) to 9 (smallest); 6 is zlib's default balance.
    /// - Throws: ``GzipError`` when the level is out of range or zlib fails (out of memory).
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) throws(GzipError) -> [UInt8] {
        guard (0...9).contains(level) else {
            throw GzipError(code: Z_STREAM_ERROR, description: "gzip level must be between 0 and 9, got \(level)")
        }
        var stream = z_stream()
        // windowBits 15 + 16 asks for a gzip header and trailer instead of zlib's.
        let initStatus = pe_deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        guard initStatus == Z_OK else { throw error(initStatus, stream: stream, during: "deflateInit2") }
        defer { deflateEnd(&stream) }

        // The output grows chunk by chunk: a buffer of deflateBound's size (about the input's) would
        // hold several MB per page for output that is a twentieth of that.
        let chunkSize = 64 * 1024
        var output: [UInt8] = []
        output.reserveCapacity(min(Int(deflateBound(&stream, uLong(bytes.count))), max(chunkSize, bytes.count / 16)))
        // Windows of at most 1 GiB keep avail_in within its 32-bit field.
        let window = 1 << 30
        var failure: GzipError?
        bytes.withUnsafeBufferPointer { input in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { chunk in
                var status = Z_OK
                repeat {
                    let consumed = Int(stream.total_in)
                    let inputChunk = min(input.count - consumed, window)
                    stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0 + consumed) }
                    stream.avail_in = uInt(inputChunk)
                    stream.next_out = chunk.baseAddress
                    stream.avail_out = uInt(chunkSize)
                    let isLastInput = consumed + inputChunk == input.count
                    status = deflate(&stream, isLastInput ? Z_FINISH : Z_NO_FLUSH)
                    if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR {
                        failure = error(status, stream: stream, during: "deflate")
                        break
                    }
                    let produced = chunkSize - Int(stream.avail_out)
                    if status == Z_BUF_ERROR && produced == 0 && Int(stream.total_in) == consumed {
                        failure = error(status, stream: stream, during: "deflate (no progress)")
                        break
                    }
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[..<produced]))
                } while status != Z_STREAM_END
            }
        }
        if let failure { throw failure }
        return output
    }

    private static func error(_ status: Int32, stream: z_stream, during step: String) -> GzipError {
        let detail: String
        if let message = stream.msg {
            detail = String(cString: message)
        } else {
            switch status {
            case Z_MEM_ERROR: detail = "out of memory"
            case Z_STREAM_ERROR: detail = "invalid parameter"
            case Z_VERSION_ERROR: detail = "incompatible zlib version"
            case Z_BUF_ERROR: detail = "no room in the output buffer"
            default: detail = "zlib status \(status)"
            }
        }
        return GzipError(code: status, description: "gzip compression failed in \(step): \(detail)")
    }
}
