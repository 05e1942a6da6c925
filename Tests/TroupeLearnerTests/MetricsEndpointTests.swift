import Testing
import TroupeLearner

/// The answer of the learner's `/metrics` to each request line (the sockets are covered by
/// `RuntimeIntegrationTests.prometheusScrapesTheLearnersMetricsEndpoint`).
@Suite struct MetricsEndpointTests {
    func answer(_ line: String) -> (status: String, body: String, type: String) {
        MetricsEndpoint.answer(requestLine: ArraySlice(Array((line + "\r\nHost: x").utf8)), exposition: "troupe_step 3\n")
    }

    @Test func onlyGetOrHeadOfMetricsIsAnswered() {
        #expect(answer("GET /metrics HTTP/1.1") == ("200 OK", "troupe_step 3\n", "text/plain; version=0.0.4; charset=utf-8"))
        #expect(answer("GET /metrics?name[]=x HTTP/1.0").status == "200 OK")
        #expect(answer("HEAD /metrics HTTP/1.1").body.isEmpty)
        #expect(answer("GET / HTTP/1.1").status == "404 Not Found")
        #expect(answer("GET /metrics/../etc HTTP/1.1").status == "404 Not Found")
        #expect(answer("POST /metrics HTTP/1.1").status == "405 Method Not Allowed")
        #expect(answer("GET /metrics").status == "400 Bad Request")
        #expect(answer("\u{0}\u{1}garbage").status == "400 Bad Request")
        #expect(answer("GET /metrics SMTP/1.1").status == "400 Bad Request")
    }
}
