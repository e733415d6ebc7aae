package server

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"

	"github.com/bestofn/bestofn/api"
)

// experiment is a validated Experiment with cumulative weights.
type experiment struct {
	name     string
	variants []Variant
	models   []*Model
	cum      []float64 // cum[i] = (w0+...+wi) / total; the last is 1
}

func newExperiment(e Experiment, models map[string]*Model) (*experiment, error) {
	if e.Name == "" {
		return nil, fmt.Errorf("server: experiment without a name")
	}
	if len(e.Variants) == 0 {
		return nil, fmt.Errorf("server: experiment %q has no variants", e.Name)
	}
	x := &experiment{name: e.Name}
	total := 0.0
	seen := make(map[string]bool)
	for _, v := range e.Variants {
		if v.Name == "" {
			return nil, fmt.Errorf("server: experiment %q: a variant has no name", e.Name)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("server: experiment %q: variant %q listed twice", e.Name, v.Name)
		}
		seen[v.Name] = true
		if !(v.Weight > 0) || math.IsInf(v.Weight, 0) {
			return nil, fmt.Errorf("server: experiment %q: variant %q has weight %v; want > 0", e.Name, v.Name, v.Weight)
		}
		m, ok := models[v.Model]
		if !ok {
			return nil, fmt.Errorf("server: experiment %q: variant %q names unknown model %q", e.Name, v.Name, v.Model)
		}
		total += v.Weight
		x.variants = append(x.variants, v)
		x.models = append(x.models, m)
	}
	acc := 0.0
	for _, v := range x.variants {
		acc += v.Weight
		x.cum = append(x.cum, acc/total)
	}
	x.cum[len(x.cum)-1] = 1
	return x, nil
}

// assign returns the index of the variant for a sticky key: the key's hash, salted with the experiment name so
// experiments split independently, is mapped to a uniform point in [0, 1) and looked up in the cumulative
// weights.
func (x *experiment) assign(key string) int {
	h := sha256.New()
	h.Write([]byte(x.name))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	u := float64(binary.BigEndian.Uint64(h.Sum(sum[:0]))>>11) / (1 << 53)
	for i, c := range x.cum {
		if u < c {
			return i
		}
	}
	return len(x.cum) - 1
}

// route is where a request goes: the model that serves it and the labels it is reported under.
type route struct {
	model   *Model
	label   string // the requested model or experiment name
	variant string
}

// resolve maps a requested model name to a route. For an experiment, the X-Bestofn-Variant header picks a
// variant by name; otherwise the sticky key (user, else the user header, else the request id) does. A model
// name routes to that model, under the variant label of its own name.
func (s *Server) resolve(r *http.Request, name, user, reqID string) (route, error) {
	if name == "" {
		return route{}, badParam("model", "model is required")
	}
	if m, ok := s.models[name]; ok {
		return route{model: m, label: name, variant: name}, nil
	}
	x, ok := s.experiments[name]
	if !ok {
		return route{}, &httpError{Status: http.StatusNotFound, Type: api.ErrorTypeInvalidRequest, Code: "model_not_found",
			Param: "model", Message: fmt.Sprintf("model %q not found; GET /v1/models lists the served models", name)}
	}
	if want := r.Header.Get(HeaderVariant); want != "" {
		for i, v := range x.variants {
			if v.Name == want {
				return route{model: x.models[i], label: name, variant: v.Name}, nil
			}
		}
		return route{}, badParam(HeaderVariant, "experiment %q has no variant %q", name, want)
	}
	key := user
	if key == "" {
		key = r.Header.Get(s.cfg.UserHeader)
	}
	if key == "" {
		key = reqID
	}
	i := x.assign(key)
	return route{model: x.models[i], label: name, variant: x.variants[i].Name}, nil
}
