package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// Response ids are unique across servers: a restarted server (or another replica, both with the same --seed)
// must not hand out the ids of the first one, which clients and logs use as keys. Two servers with the same
// config answer the same requests, streamed and not; every id must differ.
func TestResponseIDsUniqueAcrossServers(t *testing.T) {
	seen := map[string]string{}
	for run := 0; run < 2; run++ {
		e := newEnv(t, nil)
		for _, tc := range []struct{ path, body string }{
			{"/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"hi"}],"max_tokens":3}`},
			{"/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}`},
			{"/v1/completions", `{"model":"base","prompt":"hi","max_tokens":3}`},
			{"/v1/completions", `{"model":"base","prompt":"hi","max_tokens":3,"stream":true}`},
		} {
			w := e.do(t, "POST", tc.path, tc.body)
			if w.Code != 200 {
				t.Fatalf("%s: status %d: %s", tc.path, w.Code, w.Body)
			}
			body := w.Body.String()
			if strings.HasPrefix(body, "data: ") {
				body = strings.TrimPrefix(strings.SplitN(body, "\n", 2)[0], "data: ")
			}
			var resp struct{ ID string }
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.ID == "" {
				t.Fatalf("%s: no id in %s (%v)", tc.path, body, err)
			}
			what := tc.path + " " + tc.body
			if prev, dup := seen[resp.ID]; dup {
				t.Errorf("server %d answered %s with id %s, already given to %s", run, what, resp.ID, prev)
			}
			seen[resp.ID] = what
		}
	}
}
