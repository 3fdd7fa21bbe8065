import Foundation
import Testing
import WebServer

@Test func debugKeepAlive() throws {
    let server = try WebServer(configuration: WebServerConfiguration(listenAddress: "127.0.0.1:0")) { request in
        Response(status: 200, contentType: "text/plain", body: ResponseBody("hi \(request.path)\n"))
    }
    defer { server.stop() }
    for sequential in [false, true] {
        let descriptor = try TestHTTP.connect(port: server.port)
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let one = TestHTTP.requestBytes(method: "GET", path: "/a", close: false)
        let two = TestHTTP.requestBytes(method: "GET", path: "/b", close: true)
        if sequential {
            try TestHTTP.send(one, on: descriptor)
            Thread.sleep(forTimeInterval: 0.2)
            try TestHTTP.send(two, on: descriptor)
        } else {
            try TestHTTP.send(one + two, on: descriptor)
        }
        let raw = (try? TestHTTP.readToEnd(descriptor)) ?? []
        print("sequential=\(sequential)\n" + String(decoding: raw, as: UTF8.self))
    }
}
