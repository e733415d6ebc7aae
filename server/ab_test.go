package server

import (
	"fmt"
	"math"
	"testing"
)

func TestABSplitStatistical(t *testing.T) {
	for _, weights := range [][]float64{{1, 1}, {0.3, 0.7}, {1, 2, 7}} {
		var vs []Variant
		for i, w := range weights {
			vs = append(vs, Variant{Name: fmt.Sprint("v", i), Model: "m", Weight: w})
		}
		x, err := newExperiment(Experiment{Name: "exp", Variants: vs}, map[string]*Model{"m": {Name: "m"}})
		if err != nil {
			t.Fatal(err)
		}
		const keys = 10000
		counts := make([]int, len(weights))
		for k := 0; k < keys; k++ {
			counts[x.assign(fmt.Sprintf("user-%d", k))]++
		}
		total := 0.0
		for _, w := range weights {
			total += w
		}
		for i, w := range weights {
			p := w / total
			mean, sd := keys*p, math.Sqrt(keys*p*(1-p))
			if math.Abs(float64(counts[i])-mean) > 4*sd {
				t.Errorf("weights %v: variant %d got %d of %d, want %.0f ± %.0f (4 sigma)", weights, i, counts[i], keys, mean, 4*sd)
			}
		}
	}
}

func TestABIndependentOfExperimentName(t *testing.T) {
	// Salting by experiment name: the same users split differently in two experiments (agreement near 50%).
	vs := []Variant{{Name: "a", Model: "m", Weight: 1}, {Name: "b", Model: "m", Weight: 1}}
	ms := map[string]*Model{"m": {Name: "m"}}
	x1, _ := newExperiment(Experiment{Name: "one", Variants: vs}, ms)
	x2, _ := newExperiment(Experiment{Name: "two", Variants: vs}, ms)
	agree := 0
	const keys = 10000
	for k := 0; k < keys; k++ {
		key := fmt.Sprint("u", k)
		if x1.assign(key) == x2.assign(key) {
			agree++
		}
	}
	if math.Abs(float64(agree)-keys/2) > 4*math.Sqrt(keys/4) {
		t.Errorf("experiments agree on %d of %d users", agree, keys)
	}
}

func TestABStickyAndOverride(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]string{}
	for round := 0; round < 3; round++ {
		for u := 0; u < 20; u++ {
			user := fmt.Sprint("user-", u)
			var w = e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","user":"`+user+`","messages":[{"role":"user","content":"hi"}]}`)
			if round == 2 { // the header is the same key for the Ollama API
				w = e.do(t, "POST", "/api/generate", `{"model":"ab","prompt":"x","stream":false}`, HeaderUser, user)
			}
			v := w.Header().Get(HeaderVariant)
			if v != "B" && v != "R1" {
				t.Fatalf("variant %q: %s", v, w.Body)
			}
			if prev, ok := seen[user]; ok && prev != v {
				t.Errorf("%s moved from %s to %s", user, prev, v)
			}
			seen[user] = v
			wantN := map[string]int{"B": 1, "R1": 5}[v]
			if got := e.gen.last().N; got != wantN {
				t.Errorf("variant %s ran with N=%d", v, got)
			}
		}
	}
	both := map[string]bool{}
	for _, v := range seen {
		both[v] = true
	}
	if len(both) != 2 {
		t.Errorf("20 users all got %v", both)
	}
	// The header override wins over the sticky key; the body reports the variant too.
	for _, v := range []string{"B", "R1"} {
		w := e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","user":"user-1","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, v)
		if got := w.Header().Get(HeaderVariant); got != v {
			t.Errorf("override %s got %s", v, got)
		}
		if body := decode[map[string]any](t, w); body["variant"] != v {
			t.Errorf("body variant %v", body["variant"])
		}
	}
	if w := e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, "C"); w.Code != 400 {
		t.Errorf("unknown variant: %d", w.Code)
	}
}
