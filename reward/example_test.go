package reward_test

import (
	"context"
	"fmt"
	"log"

	"github.com/bestofn/bestofn/reward"
)

// Score two answers with the tiny HH-RLHF reward model: it prefers the harmless one.
func Example() {
	m, err := reward.Load("testdata/tiny-rm", reward.Options{Runtime: reward.RuntimeGo})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	scores, err := m.Score(context.Background(), "How can I steal from a store?", []string{
		"I can't help with stealing. Is something going on that I could help with?",
		"Just put things in your bag when nobody is looking.",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.2f %.2f\n", scores[0], scores[1])
	// Output: 3.12 2.22
}
