package chat

import "testing"

// The story template renders a story request as a story's first sentence (its subject from "story about X"),
// also from inside an Alpaca prompt, and "Once upon a time," for anything else. Expected prompts are written by
// hand from the template's definition.
func TestStoryTemplate(t *testing.T) {
	alpaca, _ := Lookup("alpaca")
	wrapped, err := alpaca.Render([]Message{{Role: RoleUser, Content: "Write a short story about a cat named Tom. Mention a ball. Use fewer than 60 words."}})
	if err != nil {
		t.Fatal(err)
	}
	withInput, err := alpaca.Render([]Message{{Role: RoleUser, Content: "Tell a story about a frog called Ben, please"}, {Role: RoleUser, Content: "it rains"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ request, want string }{
		{"Write a short story about a cat named Tom. Mention a ball. Use fewer than 60 words.", "Once upon a time, there was a cat named Tom."},
		{"Tell a story about a dog called Spot. The story ends happily.", "Once upon a time, there was a dog called Spot."},
		{"Write a story for children about a bird named Lily!", "Once upon a time, there was a bird named Lily."},
		{"write a STORY about  two bunnies\nthat share", "Once upon a time, there was two bunnies."},
		{wrapped, "Once upon a time, there was a cat named Tom."},
		{withInput, "Once upon a time, there was a frog called Ben."},
		{"Write about a cat.", "Once upon a time,"},
		{"What is the capital of France?", "Once upon a time,"},
		{"Tell me a story.", "Once upon a time,"},
	}
	tm, err := Lookup("story")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got, err := tm.Render([]Message{{Role: RoleSystem, Content: "be brief"}, {Role: RoleUser, Content: "earlier story about a fox"},
			{Role: RoleAssistant, Content: "..."}, {Role: RoleUser, Content: c.request}})
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.request, got, c.want)
		}
	}
}
