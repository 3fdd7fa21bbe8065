import Foundation
import Testing
import WebConfig
@testable import WebServer

@Suite("bcrypt and basic auth")
struct BcryptTests {
    /// OpenBSD / jBCrypt / crypt_blowfish test vectors.
    static let vectors: [(password: String, hash: String)] = [
        ("", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."),
        ("a", "$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"),
        ("abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"),
        ("abcdefghijklmnopqrstuvwxyz", "$2a$06$.rCVZVOThsIa97pEDOxvGuRRgzG64bvtJ0938xuqzv18d3ZpQhstC"),
        ("~!@#$%^&*()      ~!@#$%^&*()PNBFRD", "$2a$06$fPIsBO8qRqkjj273rfaOI.HtSV9jLDpTbZn782DC6/t7qT67P6FfO"),
        ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
        ("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
        ("U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"),
    ]

    /// "the password", hashed by the tools the README suggests.
    static let toolVectors = [
        "$2y$10$93B5ZJ4pJRSjvr8vO34OH.i6LdHv3nlWyswCG5H9td/l4Ukf19mTG",  // htpasswd -nbBC 10 "" 'the password'
        "$2b$10$hYMqpyYJBlzrfmEkGNVRr.863c5GHM.r5P0ua0XlYkQ1wppSQg.s.",  // mkpasswd -m bcrypt -R 10 'the password'
    ]

    @Test func hashesFromHtpasswdAndMkpasswdVerify() {
        for hash in Self.toolVectors {
            #expect(BcryptHash.problem(with: hash) == nil)
            #expect(Bcrypt.verify(password: Array("the password".utf8), hash: hash), "\(hash)")
            #expect(!Bcrypt.verify(password: Array("the Password".utf8), hash: hash), "\(hash)")
        }
    }

    @Test(.enabled(if: findExecutable("htpasswd") != nil, "apache2-utils not installed"))
    func freshHtpasswdHashVerifies() throws {
        let result = try runProgram(try #require(findExecutable("htpasswd")), ["-nbBC", "4", "prometheus", "s3cret: with colon"])
        #expect(result.status == 0)
        let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let hash = String(try #require(line.split(separator: ":", maxSplits: 1).last))
        #expect(BcryptHash.problem(with: hash) == nil, "\(hash)")
        #expect(Bcrypt.verify(password: Array("s3cret: with colon".utf8), hash: hash))
        #expect(!Bcrypt.verify(password: Array("s3cret".utf8), hash: hash))
    }

    @Test(arguments: vectors.indices)
    func knownVectorsVerifyInEveryVariant(index: Int) {
        let (password, hash) = Self.vectors[index]
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let variant = prefix + hash.dropFirst(4)
            #expect(Bcrypt.verify(password: Array(password.utf8), hash: variant), "\(variant)")
            #expect(!Bcrypt.verify(password: Array((password + "x").utf8), hash: variant))
        }
    }

    @Test func wrongPasswordsFail() {
        let hash = knownHash  // "U*U"
        for password in ["", "U*u", "U*U ", " U*U", "U*", "u*u"] {
            #expect(!Bcrypt.verify(password: Array(password.utf8), hash: hash), "\(password)")
        }
        // libcrypt would stop at a NUL; such passwords are refused outright.
        #expect(!Bcrypt.verify(password: Array("U*U\u{0}extra".utf8), hash: hash))
    }

    @Test func eightBitPasswordsFollowGoAndOpenBSD() {
        // crypt_blowfish's $2a$ "safety" variant gives nqd1...; Go, OpenBSD and Python's bcrypt
        // treat $2a$ like $2b$ (CE5e...), and so does this verifier.
        let password: [UInt8] = [0xFF, 0xFF, 0xA3]
        #expect(Bcrypt.verify(password: password, hash: "$2y$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"))
        #expect(Bcrypt.verify(password: password, hash: "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"))
        #expect(Bcrypt.verify(password: password, hash: "$2a$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"))
        #expect(!Bcrypt.verify(password: password, hash: "$2a$05$/OK.fbVrR/bpIqNJ5ianF.nqd1wy.pTMdcvrRWxyiGL2eMz.2a85."))
    }

    @Test func nonCanonicalSaltStillVerifies() {
        // The last salt character carries 2 bits; libcrypt canonicalizes it in its output, Go does not compare it.
        #expect(Bcrypt.verify(password: Array("U*U".utf8), hash: "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        let noncanonical = "$2y$05$CCCCCCCCCCCCCCCCCCCCCC" + "E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        #expect(BcryptHash.problem(with: noncanonical) == nil)
        #expect(Bcrypt.verify(password: Array("U*U".utf8), hash: noncanonical) == Bcrypt.verify(
            password: Array("U*U".utf8), hash: "$2y$05$CCCCCCCCCCCCCCCCCCCCC." + "E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
    }

    @Test func malformedHashesNeverVerify() {
        let malformed = [
            "", "U*U", "$2y$05$", String(knownHash.dropLast()), knownHash + "x",
            "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",  // crypt_blowfish's buggy variant
            "$2$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWa",
            "$2y$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",  // cost below 4
            "$2y$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWa",
            "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe!",
            "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "$6$rounds=5000$salt$hash",
        ]
        for hash in malformed {
            #expect(!Bcrypt.verify(password: Array("U*U".utf8), hash: hash), "\(hash)")
            #expect(BcryptHash.problem(with: hash) != nil, "\(hash)")
        }
        // The problem never quotes the hash.
        #expect(BcryptHash.problem(with: "$2y$05$secretsecret")?.contains("secret") == false)
    }

    @Test func basicHeaderParsingFollowsGo() throws {
        func header(_ credentials: String) -> String { "Basic " + Data(credentials.utf8).base64EncodedString() }
        let parsed = try #require(BasicAuthenticator.parseBasic(header("alice:pa:ss")))
        #expect(parsed.user == "alice" && parsed.password == Array("pa:ss".utf8))
        #expect(BasicAuthenticator.parseBasic("bAsIc " + Data("a:b".utf8).base64EncodedString())?.user == "a")
        #expect(BasicAuthenticator.parseBasic(header(":")) .map { $0.user.isEmpty && $0.password.isEmpty } == true)
        for bad in ["", "Basic", "Basic ", "Bearer abc", header("nocolon"), "Basic YWxpY2U6cGFzcw", "Basic  " + Data("a:b".utf8).base64EncodedString(),
                    "Basic !!!!", "Digest " + Data("a:b".utf8).base64EncodedString()] {
            #expect(BasicAuthenticator.parseBasic(bad) == nil, "\(bad)")
        }
    }

    private static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func authenticatorChecksCredentials() {
        let authenticator = BasicAuthenticator(users: ["alice": knownHash, "bob": Self.vectors[2].hash])
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "U*U")))
        #expect(authenticator.authenticate(authorization: Self.basic("bob", "abc")))
        #expect(!authenticator.authenticate(authorization: Self.basic("alice", "abc")))
        #expect(!authenticator.authenticate(authorization: Self.basic("bob", "U*U")))
        #expect(!authenticator.authenticate(authorization: Self.basic("carol", "U*U")))
        #expect(!authenticator.authenticate(authorization: Self.basic("Alice", "U*U")))
        #expect(!authenticator.authenticate(authorization: Self.basic("alice", "U*U\u{0}")))
        #expect(!authenticator.authenticate(authorization: nil))
        #expect(!authenticator.authenticate(authorization: "Basic"))
    }

    @Test func successesAreCachedAndFailuresAreNot() {
        // Python bcrypt: hashpw(b"correct horse", gensalt(10)).
        let hash = "$2b$10$i7LexNJHvv.yRFFAIuUptOEiRF/07oARUIVuo0j7AZZXu6QES8Xre"
        let authenticator = BasicAuthenticator(users: ["alice": hash])
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "correct horse")))
        #expect(authenticator.bcryptComputations == 1)
        for _ in 0..<5 { #expect(authenticator.authenticate(authorization: Self.basic("alice", "correct horse"))) }
        #expect(authenticator.bcryptComputations == 1, "cached successes need no bcrypt")
        // The cache holds a keyed digest of the password: another password is checked (and refused).
        #expect(!authenticator.authenticate(authorization: Self.basic("alice", "correct horse ")))
        #expect(!authenticator.authenticate(authorization: Self.basic("alice", "correct horse ")))
        #expect(authenticator.bcryptComputations == 3, "failures are not cached")
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "correct horse")))
        #expect(authenticator.bcryptComputations == 3)
    }

    @Test func cacheEntriesExpire() throws {
        let authenticator = BasicAuthenticator(users: ["alice": knownHash], cacheLifetime: .milliseconds(50))
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "U*U")))
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "U*U")))
        #expect(authenticator.bcryptComputations == 1)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(authenticator.authenticate(authorization: Self.basic("alice", "U*U")))
        #expect(authenticator.bcryptComputations == 2)
    }

    @Test func unknownUsersCostAsMuchAsKnownOnes() {
        let authenticator = BasicAuthenticator(users: ["alice": knownHash, "bob": "$2y$11$" + knownHash.dropFirst(7)])
        // The dummy hash has the highest configured cost, and unknown users run bcrypt against it.
        #expect(authenticator.dummyHash.hasPrefix("$2b$11$"))
        #expect(BcryptHash.problem(with: authenticator.dummyHash) == nil)
        #expect(!authenticator.authenticate(authorization: Self.basic("mallory", "U*U")))
        #expect(authenticator.bcryptComputations == 1)
        #expect(BasicAuthenticator(users: ["a": knownHash]).dummyHash.hasPrefix("$2b$05$"))
    }
}
