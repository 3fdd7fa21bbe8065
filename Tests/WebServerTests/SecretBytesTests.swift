import Testing
@testable import WebServer

@Suite("Secret bytes")
struct SecretBytesTests {
    @Test func emptySecretExposesNoBytes() {
        let empty = SecretBytes([])
        #expect(empty.count == 0)
        #expect(empty.withUnsafeBytes { Array($0) } == [])
        #expect(empty == SecretBytes([]))
        #expect(empty != SecretBytes([0]))
    }

    @Test func secretsExposeExactlyTheirBytes() {
        let key = SecretBytes(Array("-----BEGIN PRIVATE KEY-----".utf8))
        #expect(key.count == 27)
        #expect(key.withUnsafeBytes { Array($0) } == Array("-----BEGIN PRIVATE KEY-----".utf8))
        #expect(key == SecretBytes(Array("-----BEGIN PRIVATE KEY-----".utf8)))
        #expect(key != SecretBytes(Array("-----BEGIN PRIVATE KEY----".utf8)))
    }
}
