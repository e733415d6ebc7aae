package remote_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/server"
)

// rmPeer serves the tiny reward model over one of the remote scoring APIs, written here from their
// documented shapes (vLLM /classify and /pooling, TEI /predict, OpenRLHF /get_reward): the peer scores each
// input text as it is (template "{response}"), as those servers do. labels > 1 makes a classifier whose
// output 1 is the reward (vLLM: probs [-r, r]; TEI: LABEL_0 -r, LABEL_1 r, sorted by score as TEI does).
type rmPeer struct {
	rm     *reward.Model
	labels int
	fail   atomic.Bool // answer 503
	inputs atomic.Value
}

func (p *rmPeer) handler(t *testing.T, apiName string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.fail.Load() {
			http.Error(w, `{"error":"model overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key, path := "input", map[string]string{remote.ScoreVLLMClassify: "/classify", remote.ScoreVLLMPooling: "/pooling",
			remote.ScoreTEI: "/predict", remote.ScoreOpenRLHF: "/get_reward"}[apiName]
		switch apiName {
		case remote.ScoreTEI:
			key = "inputs"
		case remote.ScoreOpenRLHF:
			key = "query"
		}
		if r.URL.Path != path {
			http.Error(w, "no route "+r.URL.Path, http.StatusNotFound)
			return
		}
		raw, _ := body[key].([]any)
		texts := make([]string, len(raw))
		for i, v := range raw {
			texts[i], _ = v.(string)
		}
		p.inputs.Store(texts)
		scores, err := p.rm.Score(r.Context(), "", texts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		outs := func(s float32) []float64 {
			if p.labels > 1 {
				return []float64{-float64(s), float64(s)}
			}
			return []float64{float64(s)}
		}
		var out any
		switch apiName {
		case remote.ScoreVLLMClassify, remote.ScoreVLLMPooling:
			field := "probs"
			if apiName == remote.ScoreVLLMPooling {
				field = "data"
			}
			var data []map[string]any
			for i := len(scores) - 1; i >= 0; i-- { // out of order: the index field says which is which
				data = append(data, map[string]any{"index": i, field: outs(scores[i])})
			}
			out = map[string]any{"object": "list", "data": data}
		case remote.ScoreTEI:
			var res [][]map[string]any
			for _, s := range scores {
				if p.labels > 1 {
					preds := []map[string]any{{"score": -s, "label": "LABEL_0"}, {"score": s, "label": "LABEL_1"}}
					if s > 0 {
						preds[0], preds[1] = preds[1], preds[0]
					}
					res = append(res, preds)
				} else {
					res = append(res, []map[string]any{{"score": s, "label": "LABEL_0"}})
				}
			}
			out = res
		case remote.ScoreOpenRLHF:
			out = map[string]any{"rewards": scores}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// TestRemoteScorers: each remote scoring API gives the scores the local reward model gives the same
// (prompt, answer) pairs, in the same format ("\n\nHuman: ...\n\nAssistant: ...").
func TestRemoteScorers(t *testing.T) {
	local := tinyRM(t, rewardOpts())
	asIs := tinyRM(t, reward.Options{Template: "{response}"})
	prompt := "Tell me a story about a cat."
	cands := []string{"Once upon a time there was a cat named Tom.", "The dog ran.", "Lily and her cat played in the park all day long."}
	want, err := local.Score(context.Background(), prompt, cands)
	if err != nil {
		t.Fatal(err)
	}
	if remote.DefaultTemplate != reward.DefaultTemplate {
		t.Fatalf("remote.DefaultTemplate %q differs from reward.DefaultTemplate %q", remote.DefaultTemplate, reward.DefaultTemplate)
	}
	for _, tc := range []struct {
		api    string
		labels int
		label  string
	}{
		{remote.ScoreVLLMClassify, 1, ""}, {remote.ScoreVLLMClassify, 2, "1"}, {remote.ScoreVLLMPooling, 1, ""},
		{remote.ScoreTEI, 1, ""}, {remote.ScoreTEI, 2, "LABEL_1"}, {remote.ScoreOpenRLHF, 1, ""},
	} {
		t.Run(tc.api+"-"+tc.label, func(t *testing.T) {
			peer := &rmPeer{rm: asIs, labels: tc.labels}
			ts := httptest.NewServer(peer.handler(t, tc.api))
			defer ts.Close()
			s, err := remote.NewScorer(remote.ScorerConfig{Name: "rm", API: tc.api, URL: ts.URL, Label: tc.label, Model: "rm"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Score(context.Background(), prompt, cands)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Errorf("candidate %d: remote %v, local %v", i, got[i], want[i])
				}
			}
			inputs := peer.inputs.Load().([]string)
			if inputs[0] != "\n\nHuman: "+prompt+"\n\nAssistant: "+cands[0] {
				t.Errorf("the peer scored %q", inputs[0])
			}
		})
	}
	// A classifier with two outputs needs its label.
	peer := &rmPeer{rm: asIs, labels: 2}
	ts := httptest.NewServer(peer.handler(t, remote.ScoreVLLMClassify))
	defer ts.Close()
	s, _ := remote.NewScorer(remote.ScorerConfig{Name: "rm", API: remote.ScoreVLLMClassify, URL: ts.URL})
	if _, err := s.Score(context.Background(), prompt, cands); err == nil || !strings.Contains(err.Error(), "set label") {
		t.Errorf("two outputs without a label: %v", err)
	}
}

// TestRemoteScorerFailureDegrades: R1 over a remote generator with a remote reward model that fails answers
// with the first sample, degraded, naming the scorer's backend; after Failures failures the scorer's circuit
// opens (readyz) and R1 degrades at once; when the scorer is back, R1 is ranked again.
func TestRemoteScorerFailureDegrades(t *testing.T) {
	srv := startRemote(t)
	peer := &rmPeer{rm: tinyRM(t, reward.Options{Template: "{response}"}), labels: 1}
	ts := httptest.NewServer(peer.handler(t, remote.ScoreTEI))
	defer ts.Close()
	s, err := remote.NewScorer(remote.ScorerConfig{Name: "tei-rm", API: remote.ScoreTEI, URL: ts.URL,
		Breaker: remote.BreakerConfig{Failures: 2, OpenFor: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := newGenerator(t, remote.Config{URL: srv.URL + "/v1"})
	gw := newGateway(t, g, s, server.Limits{})
	ask := func() map[string]any {
		status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m:r1", map[string]any{"return_candidates": true}))
		if status != http.StatusOK {
			t.Fatalf("status %d, body %v", status, body)
		}
		return body
	}
	if body := ask(); body["degraded"] == true {
		t.Fatalf("degraded with the scorer up: %v", body["degraded_reason"])
	}
	peer.fail.Store(true)
	for i := 0; i < 3; i++ {
		body := ask()
		reason, _ := body["degraded_reason"].(string)
		if body["degraded"] != true || !strings.Contains(reason, `backend "tei-rm"`) {
			t.Errorf("request %d: degraded %v, reason %q", i, body["degraded"], reason)
		}
		if i == 2 && !strings.Contains(reason, "circuit open") {
			t.Errorf("third failure: reason %q, want the open circuit", reason)
		}
	}
	if st := readyBackend(t, gw.URL, "tei-rm"); st.Kind != "scorer" || st.State != api.BackendOpen {
		t.Errorf("readyz: %+v", st)
	}
	peer.fail.Store(false)
	time.Sleep(350 * time.Millisecond)
	if body := ask(); body["degraded"] == true {
		t.Errorf("degraded after the scorer came back: %v", body["degraded_reason"])
	}
}
