package storytask

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/rules"
)

// Every instruction states exactly the constraints it was made from, in words rules.FromText reads: the name,
// the object to mention, the word limit and, when asked, the happy ending.
func TestFromTextReadsEveryConstraint(t *testing.T) {
	for _, split := range []string{Train, Eval} {
		tasks, err := Generate(7, split, 300)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			got := map[string]map[string]any{}
			for _, in := range rules.FromText(tk.Instruction) {
				got[in.ID] = in.Kwargs
			}
			want := map[string]map[string]any{
				"detectable_content:name":         {"name": tk.Name},
				"keywords:existence":              {"keywords": []string{tk.Object}},
				"length_constraints:number_words": {"num_words": tk.MaxWords, "relation": "less than"},
			}
			if tk.Happy {
				want["sentiment:ends_happily"] = map[string]any{}
			}
			if len(got) != len(want) {
				t.Fatalf("%q: FromText found %v, want %v", tk.Instruction, got, want)
			}
			for id, kw := range want {
				g, ok := got[id]
				if !ok {
					t.Fatalf("%q: FromText misses %s (found %v)", tk.Instruction, id, got)
				}
				for k, v := range kw {
					if !equalArg(g[k], v) {
						t.Errorf("%q: %s %s = %v, want %v", tk.Instruction, id, k, g[k], v)
					}
				}
			}
		}
	}
}

func equalArg(got, want any) bool {
	switch w := want.(type) {
	case int:
		switch g := got.(type) {
		case int:
			return g == w
		case float64:
			return g == float64(w)
		}
		return false
	case []string:
		var gs []string
		switch g := got.(type) {
		case []string:
			gs = g
		case []any:
			for _, e := range g {
				s, _ := e.(string)
				gs = append(gs, s)
			}
		}
		return reflect.DeepEqual(gs, w)
	}
	return reflect.DeepEqual(got, want)
}

// No evaluation instruction, and no held-out (name, object) pair, occurs in the training split, for several
// seeds and the largest sizes the recipe uses; every name and object is trained with other partners.
func TestHeldOutPairsNeverInTraining(t *testing.T) {
	for _, seed := range []uint64{1, 2, 99} {
		train, err := Generate(seed, Train, 6000)
		if err != nil {
			t.Fatal(err)
		}
		eval, err := Generate(seed, Eval, 400)
		if err != nil {
			t.Fatal(err)
		}
		evalText := map[string]bool{}
		for _, e := range eval {
			if !HeldOut(e.Name, e.Object) {
				t.Fatalf("eval task %q has a training pair", e.Instruction)
			}
			evalText[e.Instruction] = true
		}
		names, objects := map[string]bool{}, map[string]bool{}
		for _, tr := range train {
			if HeldOut(tr.Name, tr.Object) {
				t.Fatalf("training task %q has a held-out pair", tr.Instruction)
			}
			if evalText[tr.Instruction] {
				t.Fatalf("training task %q is an evaluation task", tr.Instruction)
			}
			// The words of the text, not only the fields: no held-out pair is mentioned at all.
			for _, e := range eval {
				if strings.Contains(tr.Instruction, " "+e.Name+".") && strings.Contains(tr.Instruction, " "+e.Object+".") {
					t.Fatalf("training task %q names held-out pair %s/%s", tr.Instruction, e.Name, e.Object)
				}
			}
			names[tr.Name], objects[tr.Object] = true, true
		}
		if len(names) != len(Names) || len(objects) != len(Objects) {
			t.Errorf("seed %d: training uses %d of %d names and %d of %d objects", seed, len(names), len(Names), len(objects), len(Objects))
		}
	}
	held := 0
	for _, n := range Names {
		k := 0
		for _, o := range Objects {
			if HeldOut(n, o) {
				k++
			}
		}
		if k == 0 || k == len(Objects) {
			t.Errorf("name %s has %d held-out objects", n, k)
		}
		held += k
	}
	if held != len(Names)*len(Objects)/8 {
		t.Errorf("%d held-out pairs, want an eighth of %d", held, len(Names)*len(Objects))
	}
}

// The same seed gives the same list; another seed another; the splits are distinct streams and the ids unique.
func TestGenerateDeterministic(t *testing.T) {
	a, _ := Generate(3, Train, 50)
	b, _ := Generate(3, Train, 50)
	c, _ := Generate(4, Train, 50)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different tasks")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same tasks")
	}
	ids := map[string]bool{}
	for _, tk := range a {
		if ids[tk.ID] {
			t.Fatalf("id %s twice", tk.ID)
		}
		ids[tk.ID] = true
	}
	if _, err := Generate(1, "test", 1); err == nil {
		t.Error("unknown split accepted")
	}
	if _, err := Generate(1, Eval, 1_000_000); err == nil {
		t.Error("more eval tasks than the split holds accepted")
	}
}
