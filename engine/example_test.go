package engine_test

import (
	"context"
	"fmt"

	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

// Generate with the real stories260K model: greedy decoding, a stop string, reranked by a toy scorer (longer is
// better). With N > 1 and a temperature, the N candidates share one prefill and decode together.
func ExampleEngine_Generate() {
	const path = "../../shared/models/stories260K/stories260K.gguf"
	ck, err := weights.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ck.Close()
	m, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	tok, err := tokenizer.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	byLength := scorer(func(_ context.Context, _ string, cands []string) ([]float32, error) {
		scores := make([]float32, len(cands))
		for i, c := range cands {
			scores[i] = float32(len(c))
		}
		return scores, nil
	})
	e, err := engine.New(m, tok, byLength, engine.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	res, err := e.Generate(context.Background(), engine.Request{Prompt: "Once upon a time", N: 1, Rerank: true,
		MaxTokens: 12, Stop: []string{"."}, Sampling: engine.SamplingParams{Temperature: 0}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range res.Candidates {
		fmt.Printf("rank %d: candidate %d, %d tokens, %s: %q\n", c.Rank, c.Index, len(c.Tokens), c.FinishReason, c.Text)
	}
	// Output:
	// rank 1: candidate 0, 11 tokens, stop: ", there was a little girl named Lily"
}

type scorer func(ctx context.Context, prompt string, cands []string) ([]float32, error)

func (f scorer) Score(ctx context.Context, prompt string, cands []string) ([]float32, error) {
	return f(ctx, prompt, cands)
}
