package sampler_test

import (
	"fmt"

	"github.com/bestofn/bestofn/sampler"
)

// Greedy decoding: temperature 0 picks the highest logit, ties to the lowest id.
func ExampleNew() {
	s, err := sampler.New(sampler.Params{Temperature: 0}, 4)
	if err != nil {
		panic(err)
	}
	id, _ := s.Sample([]float32{0.5, 2, 2, -1})
	s.Accept(id)
	fmt.Println(id)
	// Output: 1
}

// A stop string split across tokens is caught, and nothing of it is emitted.
func ExampleStopMatcher() {
	m, err := sampler.NewStopMatcher([]string{"### Instruction:"})
	if err != nil {
		panic(err)
	}
	for _, piece := range []string{"Paris is the capital.", "\n\n###", " Instr", "uction: next"} {
		emit, stopped := m.Feed(piece)
		fmt.Printf("%q %v\n", emit, stopped)
		if stopped {
			break
		}
	}
	// Output:
	// "Paris is the capital." false
	// "\n\n" false
	// "" false
	// "" true
}
