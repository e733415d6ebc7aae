package server

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkServerOverhead measures the HTTP layer alone (decode, validate, route, encode) over the fake
// generator, for a non-streamed and a streamed chat completion of best-of-5 and of one candidate.
func BenchmarkServerOverhead(b *testing.B) {
	e := newEnv(b, nil)
	for _, c := range []struct{ name, body string }{
		{"B", `{"model":"base","seed":1,"messages":[{"role":"user","content":"hi"}]}`},
		{"R1", `{"model":"base:r1","seed":1,"messages":[{"role":"user","content":"hi"}]}`},
		{"B-stream", `{"model":"base","seed":1,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(c.body))
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
