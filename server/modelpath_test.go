package server

import (
	"testing"

	"github.com/bestofn/bestofn/api"
)

// GET /v1/models/{model} with the name percent-encoded, as a client that escapes path segments (JavaScript's
// encodeURIComponent, Python's quote(safe="")) sends "base:r1": the name is decoded before it is looked up.
func TestGetModelPercentEncoded(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/v1/models/base:r1", "/v1/models/base%3Ar1", "/v1/models/base%3ar1"} {
		w := e.do(t, "GET", path, "")
		if m := decode[api.Model](t, w); w.Code != 200 || m.ID != "base:r1" {
			t.Errorf("GET %s: %d %+v", path, w.Code, m)
		}
	}
}
