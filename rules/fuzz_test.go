package rules

import (
	"testing"
)

// FuzzFromText: instructions read from any text check any answer without a panic, with credits in [0, 1] and a
// score in [0, 1 + TieBreak].
func FuzzFromText(f *testing.F) {
	f.Add("Write a story about a cat named Tom, under 80 words, that mentions a ball and ends with 'The end.'", "Tom had a ball. The end.")
	f.Add("Answer in JSON with the keys name and age. No commas. all lowercase", "```json\n{\"name\": 1}\n```")
	f.Add("Use at least 3 sentences and do not use the words 'sad', \"bad\" or ugly.", "Mr. A. B. left!? Yes.")
	f.Fuzz(func(t *testing.T, prompt, answer string) {
		ins := FromText(prompt)
		for _, in := range ins {
			for _, r := range []Result{in.Check(answer), in.CheckLoose(answer)} {
				if r.Credit < 0 || r.Credit > 1 || (r.Followed && r.Credit != 1) {
					t.Fatalf("%s: %+v", in.ID, r)
				}
			}
		}
		if s := ScoreAnswer(ins, answer, false); s < 0 || s > 1+TieBreak+1e-9 {
			t.Fatalf("score %v", s)
		}
	})
}
