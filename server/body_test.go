package server

import (
	"strings"
	"testing"

	"github.com/bestofn/bestofn/api"
)

// A body that is JSON but not an object is a 400 that says so in the API's words, not in Go's ("must be of
// type api.ChatCompletionRequest").
func TestBodyNotAnObject(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"} {
		for _, body := range []string{`[]`, `"x"`, `5`, `true`} {
			w := e.do(t, "POST", path, body)
			msg := w.Body.String()
			if strings.HasPrefix(path, "/v1/") {
				msg = decode[api.ErrorResponse](t, w).Error.Message
			}
			if w.Code != 400 || !strings.Contains(msg, "JSON object") || strings.Contains(msg, "api.") || strings.Contains(msg, "server.") {
				t.Errorf("%s %s: %d %s", path, body, w.Code, msg)
			}
		}
	}
}
