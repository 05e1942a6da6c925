import Testing
import TroupeLearner

/// The answer of the learner's `/metrics` to each request line (the sockets are covered by
/// `RuntimeIntegrationTests.prometheusScrapesTheLearnersMetricsEndpoint`).
@Suite struct MetricsEndpointTests {
    func answer(_ line: String) -> MetricsEndpoint.Answer {
        MetricsEndpoint.answer(toRequest: Array((line + "\r\nHost: x\r\n\r\n").utf8), exposition: "troupe_step 3\n")!
    }

    @Test func onlyGetOrHeadOfMetricsIsAnswered() {
        #expect(answer("GET /metrics HTTP/1.1") == MetricsEndpoint.Answer("200 OK", "troupe_step 3\n", type: "text/plain; version=0.0.4; charset=utf-8"))
        #expect(answer("GET /metrics?name[]=x HTTP/1.0").status == "200 OK")
        // HEAD: the GET's headers, Content-Length included, without the body.
        #expect(answer("HEAD /metrics HTTP/1.1").headersOnly && answer("HEAD /metrics HTTP/1.1").body == "troupe_step 3\n")
        #expect(answer("GET / HTTP/1.1").status == "404 Not Found")
        #expect(answer("GET /metrics/../etc HTTP/1.1").status == "404 Not Found")
        #expect(answer("POST /metrics HTTP/1.1").status == "405 Method Not Allowed")
        #expect(answer("GET /metrics").status == "400 Bad Request")
        #expect(answer("\u{0}\u{1}garbage").status == "400 Bad Request")
        #expect(answer("GET /metrics SMTP/1.1").status == "400 Bad Request")
    }

    /// A head ends at a blank line after CRLF or a lone LF; one over 8 KiB is refused however it arrived.
    @Test func requestHeadsAreBoundedAndMayEndInLoneLineFeeds() {
        let exposition = "troupe_step 3\n"
        #expect(MetricsEndpoint.answer(toRequest: Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8), exposition: exposition) == nil)
        #expect(MetricsEndpoint.answer(toRequest: Array("GET /metrics HTTP/1.1\nHost: x\n\n".utf8), exposition: exposition)?.status == "200 OK")
        let long = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        #expect(MetricsEndpoint.answer(toRequest: Array(long.utf8), exposition: exposition)?.status == "431 Request Header Fields Too Large")
        let endless = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000)
        #expect(MetricsEndpoint.answer(toRequest: Array(endless.utf8), exposition: exposition)?.status == "431 Request Header Fields Too Large")
    }
}
