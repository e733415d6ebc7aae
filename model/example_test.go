package model_test

import (
	"fmt"
	"log"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

// Greedy decoding: prefill the prompt as one batch, then one token per Forward call.
func Example() {
	const path = "../../shared/models/stories260K/stories260K.gguf"
	ck, err := weights.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer ck.Close()
	m, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromMetadata(ck.Metadata)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := model.NewKVCache(m.Config(), model.CacheOptions{MaxTokens: 256})
	if err != nil {
		log.Fatal(err)
	}
	seq, _ := cache.NewSeq()

	prompt := tok.Encode("Once upon a time", true, false)
	seqs := make([]model.SeqID, len(prompt))
	for i := range seqs {
		seqs[i] = seq
	}
	logits := make([]float32, m.Config().VocabSize)
	if err := m.Forward(cache, model.Batch{Tokens: prompt, Seqs: seqs}, logits); err != nil {
		log.Fatal(err)
	}
	var out []int32
	for range 12 {
		best := int32(0)
		for id, v := range logits {
			if v > logits[best] {
				best = int32(id)
			}
		}
		out = append(out, best)
		if err := m.Forward(cache, model.Batch{Tokens: []int32{best}, Seqs: []model.SeqID{seq}}, logits); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%q\n", tok.Decode(out))
	fmt.Println(cache.Len(seq), "positions cached")
	// Output:
	// ", there was a little girl named Lily. She"
	// 17 positions cached
}
