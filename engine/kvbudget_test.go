package engine

import (
	"context"
	"errors"
	"testing"
)

// A request whose worst case can never fit the KV cache says how many tokens would fit for its candidates
// (the server names the parameter and the limit), and the number is right: a request for exactly that many
// is admitted and completes, one more is refused.
func TestKVBudgetErrorSaysWhatFits(t *testing.T) {
	e, err := newEngine(newFakeBackend(fakeVocabSize, 256, 4, 16), fakeVocab{}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Generate(context.Background(), Request{Prompt: "a", N: 4, MaxTokens: 100})
	var kv *KVBudgetError
	if !errors.As(err, &kv) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("worst case over the cache: %v, want a KVBudgetError wrapping ErrTooLarge", err)
	}
	if kv.N != 4 || kv.MaxTokens != 100 || kv.PromptTokens != 2 || kv.MaxFit < 1 || kv.MaxFit >= 100 {
		t.Fatalf("%+v", kv)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "a", N: 4, MaxTokens: kv.MaxFit}); err != nil {
		t.Errorf("max tokens %d, which the error said fits: %v", kv.MaxFit, err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "a", N: 4, MaxTokens: kv.MaxFit + 1}); !errors.As(err, &kv) {
		t.Errorf("max tokens %d, one more than fits: %v", kv.MaxFit+1, err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "a", N: 16}); !errors.As(err, &kv) || kv.MaxFit != 0 {
		t.Errorf("16 candidates in 16 blocks, no length: %v, want a KVBudgetError with nothing that fits", err)
	}
}
