package server

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// openaiDefaults are OpenAI's defaults for unset sampling fields.
var openaiDefaults = engine.SamplingParams{Temperature: 1, TopP: 1}

// responseID is a new response id: prefix and 64 bits from the process's randomly seeded source, not from the
// seeds of requests (--seed), so that a restarted server or another replica never repeats the ids of another.
func responseID(prefix string) string { return fmt.Sprintf("%s%016x", prefix, rand.Uint64()) }

// begin resolves the model of a generation request and records its labels.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, model, user string) (route, string, error) {
	reqID := middleware.GetReqID(r.Context())
	rt, err := s.resolve(r, model, user, reqID)
	if err != nil {
		return route{}, reqID, err
	}
	ri := infoFrom(r.Context())
	ri.model, ri.variant = rt.label, rt.variant
	rt.model = s.pin(ri, rt.model) // released by handle
	w.Header().Set(HeaderVariant, rt.variant)
	return rt, reqID, nil
}

// openaiParams are the generation options both OpenAI endpoints share.
func openaiParams(g *api.GenerationParams) (params, error) {
	json, err := jsonMode(g.ResponseFormat)
	return params{
		temperature: g.Temperature, topP: g.TopP, minP: g.MinP, repeatPenalty: g.RepeatPenalty,
		presence: g.PresencePenalty, frequency: g.FrequencyPenalty, topK: g.TopK, seed: g.Seed,
		maxTokens: g.MaxTokens, maxTokensName: "max_tokens", stop: g.Stop, logitBias: g.LogitBias,
		n: g.N, bestOf: g.BestOf, rerank: g.Rerank, json: json,
	}, err
}

// openaiExt builds the bestofn fields of a finished OpenAI response.
func openaiExt(rt route, returnCandidates bool) func(*engine.Result) api.Extensions {
	return func(res *engine.Result) api.Extensions { return resultExt(rt, res, returnCandidates) }
}

// resultExt is the bestofn fields of a finished response on either API, with every candidate when asked.
func resultExt(rt route, res *engine.Result, withCandidates bool) api.Extensions {
	e := api.Extensions{Variant: rt.variant, Degraded: res.Degraded, DegradedReason: res.DegradedReason}
	if withCandidates {
		e.Candidates = candidates(res)
	}
	return e
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) error {
	var req api.ChatCompletionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rt, reqID, err := s.begin(w, r, req.Model, req.User)
	if err != nil {
		return err
	}
	if err := checkChatFeatures(&req); err != nil {
		return err
	}
	msgs := make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = Message{Role: role, Content: string(m.Content)}
	}
	if err := checkMessages(msgs); err != nil {
		return err
	}
	prompt, err := render(rt.model, msgs)
	if err != nil {
		return err
	}
	p, err := openaiParams(&req.GenerationParams)
	if err != nil {
		return err
	}
	p.logprobs = req.Logprobs
	if req.MaxCompletionTokens != nil {
		p.maxTokens, p.maxTokensName = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if req.TopLogprobs != nil {
		if *req.TopLogprobs > 0 && !req.Logprobs {
			return badParam("top_logprobs", "top_logprobs requires logprobs: true")
		}
		p.topLogprobs = *req.TopLogprobs
	}
	pl, err := s.toEngine(rt.model, p, openaiDefaults)
	if err != nil {
		return err
	}
	pl.req.Prompt, pl.req.PromptParts = joinParts(prompt), prompt
	pl.req.RewardPrompt = lastUser(msgs)
	pl.req.Messages = engineMessages(msgs)
	c := &call{rt: rt, plan: pl, endpoint: "/v1/chat/completions", reqID: reqID, start: infoFrom(r.Context()).start, chat: true}
	id := responseID("chatcmpl-")
	created := c.start.Unix()
	ext := openaiExt(rt, req.ReturnCandidates)

	if req.Stream {
		return s.streamChat(w, r, c, id, created, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, ext)
	}
	res, _, err := s.run(r.Context(), c, nil)
	if err != nil {
		return err
	}
	out := api.ChatCompletionResponse{
		ID: id, Object: api.ObjectChatCompletion, Created: created, Model: rt.model.Name,
		Usage: usage(res), SystemFingerprint: "bestofn-" + s.cfg.Version, Extensions: ext(res),
	}
	for j := 0; j < pl.nChoices; j++ {
		cand := &res.Candidates[j]
		ch := api.ChatChoice{Index: j, Message: api.ChatMessage{Role: "assistant", Content: api.Content(cand.Text)},
			FinishReason: finishReason(cand.FinishReason)}
		if pl.req.Logprobs {
			ch.Logprobs = &api.ChoiceLogprobs{Content: tokenLogprobs(cand.Logprobs)}
		}
		out.Choices = append(out.Choices, ch)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) streamChat(w http.ResponseWriter, r *http.Request, c *call, id string, created int64,
	includeUsage bool, ext func(*engine.Result) api.Extensions) error {
	sw := newStreamWriter(w, true)
	n := c.plan.nChoices
	roleSent := make([]bool, n)
	chunk := func(choice int, text string, finish *string) api.ChatCompletionChunk {
		d := api.ChatDelta{Content: text}
		if !roleSent[choice] {
			d.Role = "assistant"
			roleSent[choice] = true
		}
		return api.ChatCompletionChunk{ID: id, Object: api.ObjectChatCompletionChunk, Created: created,
			Model: c.rt.model.Name, SystemFingerprint: "bestofn-" + s.cfg.Version, Extensions: api.Extensions{Variant: c.rt.variant},
			Choices: []api.ChunkChoice{{Index: choice, Delta: d, FinishReason: finish}}}
	}
	res, streamed, err := s.run(r.Context(), c, func(choice int, text string) error {
		return sw.send(chunk(choice, text, nil))
	})
	if err != nil {
		return s.failStream(sw, r, err)
	}
	for j := 0; j < n; j++ {
		cand := &res.Candidates[j]
		if rest := remainder(cand.Text, streamed[j]); rest != "" || !roleSent[j] {
			if err := sw.send(chunk(j, rest, nil)); err != nil {
				return s.failStream(sw, r, err)
			}
		}
		fr := finishReason(cand.FinishReason)
		last := chunk(j, "", &fr)
		if c.plan.req.Logprobs {
			// The engine streams text only; a choice's token logprobs come with its finishing chunk.
			last.Choices[0].Logprobs = &api.ChoiceLogprobs{Content: tokenLogprobs(cand.Logprobs)}
		}
		if j == n-1 {
			last.Extensions = ext(res)
		}
		if err := sw.send(last); err != nil {
			return s.failStream(sw, r, err)
		}
	}
	if includeUsage {
		u := usage(res)
		if err := sw.send(api.ChatCompletionChunk{ID: id, Object: api.ObjectChatCompletionChunk, Created: created,
			Model: c.rt.model.Name, Choices: []api.ChunkChoice{}, Usage: &u,
			Extensions: api.Extensions{Variant: c.rt.variant}}); err != nil {
			return s.failStream(sw, r, err)
		}
	}
	if err := sw.done(); err != nil {
		return s.failStream(sw, r, err)
	}
	return nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) error {
	var req api.CompletionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rt, reqID, err := s.begin(w, r, req.Model, req.User)
	if err != nil {
		return err
	}
	if len(req.Prompt) != 1 {
		return badParam("prompt", "prompt must be one string (got %d prompts)", len(req.Prompt))
	}
	if req.Suffix != "" {
		return unsupported("suffix", "fill-in-the-middle (suffix)")
	}
	p, err := openaiParams(&req.GenerationParams)
	if err != nil {
		return err
	}
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > 5 {
			return badParam("logprobs", "logprobs must be in [0, 5], got %d", *req.Logprobs)
		}
		p.logprobs, p.topLogprobs = true, *req.Logprobs
	}
	pl, err := s.toEngine(rt.model, p, openaiDefaults)
	if err != nil {
		return err
	}
	prompt := req.Prompt[0]
	pl.req.Prompt = prompt
	if req.ParseSpecial {
		pl.req.PromptParts = []engine.PromptPart{{Text: prompt, Special: true}}
	}
	c := &call{rt: rt, plan: pl, endpoint: "/v1/completions", reqID: reqID, start: infoFrom(r.Context()).start}
	id := responseID("cmpl-")
	created := c.start.Unix()
	resp := func(choices []api.CompletionChoice) api.CompletionResponse {
		return api.CompletionResponse{ID: id, Object: api.ObjectTextCompletion, Created: created, Model: rt.model.Name,
			SystemFingerprint: "bestofn-" + s.cfg.Version, Choices: choices, Extensions: api.Extensions{Variant: rt.variant}}
	}
	ext := openaiExt(rt, req.ReturnCandidates)
	echo := ""
	if req.Echo {
		echo = prompt
	}

	if !req.Stream {
		res, _, err := s.run(r.Context(), c, nil)
		if err != nil {
			return err
		}
		out := resp(nil)
		for j := 0; j < pl.nChoices; j++ {
			cand := &res.Candidates[j]
			fr := finishReason(cand.FinishReason)
			ch := api.CompletionChoice{Index: j, Text: echo + cand.Text, FinishReason: &fr}
			if pl.req.Logprobs {
				ch.Logprobs = legacyLogprobs(cand.Logprobs, echo)
			}
			out.Choices = append(out.Choices, ch)
		}
		u := usage(res)
		out.Usage = &u
		out.Extensions = ext(res)
		writeJSON(w, http.StatusOK, out)
		return nil
	}

	sw := newStreamWriter(w, true)
	echoed := make([]bool, pl.nChoices)
	text := func(choice int, t string) string {
		if !echoed[choice] {
			echoed[choice] = true
			return echo + t
		}
		return t
	}
	res, streamed, err := s.run(r.Context(), c, func(choice int, t string) error {
		return sw.send(resp([]api.CompletionChoice{{Index: choice, Text: text(choice, t)}}))
	})
	if err != nil {
		return s.failStream(sw, r, err)
	}
	for j := 0; j < pl.nChoices; j++ {
		cand := &res.Candidates[j]
		fr := finishReason(cand.FinishReason)
		last := resp([]api.CompletionChoice{{Index: j, Text: text(j, remainder(cand.Text, streamed[j])), FinishReason: &fr}})
		if pl.req.Logprobs {
			last.Choices[0].Logprobs = legacyLogprobs(cand.Logprobs, echo)
		}
		if j == pl.nChoices-1 {
			last.Extensions = ext(res)
		}
		if err := sw.send(last); err != nil {
			return s.failStream(sw, r, err)
		}
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		// As OpenAI sends it: a last chunk with usage and no choices.
		u := usage(res)
		final := resp([]api.CompletionChoice{})
		final.Usage = &u
		if err := sw.send(final); err != nil {
			return s.failStream(sw, r, err)
		}
	}
	if err := sw.done(); err != nil {
		return s.failStream(sw, r, err)
	}
	return nil
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	out := api.ModelList{Object: api.ObjectList, Data: []api.Model{}}
	for _, name := range s.names {
		out.Data = append(out.Data, s.modelObject(name))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) modelObject(name string) api.Model {
	owner := "bestofn"
	if _, ok := s.experiments[name]; ok {
		owner = "bestofn-experiment"
	}
	return api.Model{ID: name, Object: api.ObjectModel, Created: s.created.Unix(), OwnedBy: owner}
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "model")
	if n, err := url.PathUnescape(name); err == nil { // chi routes on the raw path: "a%3Ab" is "a:b"
		name = n
	}
	if _, ok := s.modelFor(name); !ok {
		return &httpError{Status: http.StatusNotFound, Type: api.ErrorTypeInvalidRequest, Code: "model_not_found",
			Param: "model", Message: fmt.Sprintf("model %q not found", name)}
	}
	writeJSON(w, http.StatusOK, s.modelObject(name))
	return nil
}

// finishReason maps an engine finish reason to OpenAI's.
func finishReason(f engine.FinishReason) string {
	if f == engine.FinishLength {
		return "length"
	}
	return "stop"
}

// usage counts prompt tokens and the tokens of every sampled candidate.
func usage(res *engine.Result) api.Usage {
	u := api.Usage{PromptTokens: res.PromptTokens}
	for _, c := range res.Candidates {
		u.CompletionTokens += c.NumTokens()
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// candidates lists a result's candidates for the return_candidates extension, in the result's order.
func candidates(res *engine.Result) []api.Candidate {
	out := make([]api.Candidate, len(res.Candidates))
	for i, c := range res.Candidates {
		out[i] = api.Candidate{Index: c.Index, Rank: c.Rank, Text: c.Text, FinishReason: finishReason(c.FinishReason),
			Tokens: c.NumTokens()}
		if out[i].Rank == 0 {
			out[i].Rank = i + 1
		}
		if c.Scored {
			v := float64(c.Score)
			out[i].Score = &v
		}
		if n := c.NumTokens(); n > 0 && !math.IsNaN(c.CumLogprob) {
			v := c.CumLogprob / float64(n)
			out[i].MeanLogprob = &v
		}
	}
	return out
}

func byteInts(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}

func tokenLogprobs(lps []engine.TokenLogprob) []api.TokenLogprob {
	out := make([]api.TokenLogprob, len(lps))
	for i, lp := range lps {
		out[i] = api.TokenLogprob{Token: lp.Text, Logprob: float64(lp.Logprob), Bytes: byteInts(lp.Text),
			TopLogprobs: make([]api.TopLogprob, len(lp.Top))}
		for k, t := range lp.Top {
			out[i].TopLogprobs[k] = api.TopLogprob{Token: t.Text, Logprob: float64(t.Logprob), Bytes: byteInts(t.Text)}
		}
	}
	return out
}

// legacyLogprobs are a completion choice's logprobs; text_offset is where each token starts in the choice's
// text, after prefix (the echoed prompt).
func legacyLogprobs(lps []engine.TokenLogprob, prefix string) *api.CompletionLogprobs {
	out := &api.CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{},
		TextOffset: textOffsets(prefix, lps)}
	for _, lp := range lps {
		out.Tokens = append(out.Tokens, lp.Text)
		out.TokenLogprobs = append(out.TokenLogprobs, float64(lp.Logprob))
		top := make(map[string]float64, len(lp.Top))
		for _, t := range lp.Top {
			top[t.Text] = float64(t.Logprob)
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
	}
	return out
}

// textOffsets gives each token's offset in characters (as OpenAI and vLLM count them: code points of the
// text, not bytes) from the start of prefix + the tokens' texts. A token that starts inside a character split
// over byte tokens is at that character's index; an invalid byte counts as the one U+FFFD it decodes to.
func textOffsets(prefix string, lps []engine.TokenLogprob) []int {
	offsets := make([]int, len(lps))
	n := utf8.RuneCountInString(prefix)
	var tail []byte // the text's incomplete last character
	for i, lp := range lps {
		offsets[i] = n
		tail = append(tail, lp.Text...)
		k := len(tail)
		for j := len(tail) - 1; j >= 0 && j >= len(tail)-utf8.UTFMax+1; j-- {
			if utf8.RuneStart(tail[j]) {
				if !utf8.FullRune(tail[j:]) {
					k = j
				}
				break
			}
		}
		n += utf8.RuneCount(tail[:k])
		tail = append(tail[:0], tail[k:]...)
	}
	return offsets
}
