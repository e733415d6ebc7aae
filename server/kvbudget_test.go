package server

import (
	"strings"
	"testing"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// A request the KV cache can never hold (max_tokens 1024 with n 16 on stories260K) is a 400 naming the
// parameter to lower and the limit, in the API's words: it used to be "engine: request needs more KV memory
// than the engine has: 1041 blocks worst case, 512 in the cache" with param null.
func TestKVBudgetNamesTheParameter(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		err         *engine.KVBudgetError
		path, body  string
		param, want string
	}{
		{&engine.KVBudgetError{PromptTokens: 3, MaxTokens: 90, N: 8, MaxFit: 40}, "/v1/completions",
			`{"model":"base","prompt":"x","max_tokens":90,"n":8}`, "max_tokens", "at most 40"},
		{&engine.KVBudgetError{PromptTokens: 3, MaxTokens: 90, N: 8, MaxFit: 40}, "/v1/chat/completions",
			`{"model":"base","messages":[{"role":"user","content":"x"}],"max_tokens":90,"n":8}`, "max_tokens", "at most 40"},
		{&engine.KVBudgetError{PromptTokens: 300, N: 8}, "/v1/chat/completions",
			`{"model":"base","messages":[{"role":"user","content":"x"}],"n":8}`, "best_of", "fewer candidates"},
		{&engine.KVBudgetError{PromptTokens: 3, MaxTokens: 90, N: 8, MaxFit: 40}, "/api/generate",
			`{"model":"base","prompt":"x","stream":false,"options":{"num_predict":90,"best_of":8}}`, "options.num_predict", "at most 40"},
	} {
		e.gen.err = c.err
		w := e.do(t, "POST", c.path, c.body)
		var msg, param string
		if strings.HasPrefix(c.path, "/api/") {
			msg = decode[map[string]string](t, w)["error"]
			if strings.Contains(msg, c.param) {
				param = c.param
			}
		} else {
			er := decode[api.ErrorResponse](t, w)
			msg = er.Error.Message
			if er.Error.Param != nil {
				param = *er.Error.Param
			}
		}
		if w.Code != 400 || param != c.param || !strings.Contains(msg, c.want) || strings.Contains(msg, "engine:") {
			t.Errorf("%s %s: %d param %q message %q, want 400 naming %s and saying %q", c.path, c.body, w.Code, param, msg, c.param, c.want)
		}
	}
}
