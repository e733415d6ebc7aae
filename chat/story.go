package chat

import (
	"regexp"
	"strings"
)

// story renders a request for a story as the opening of one, for a base story model (such as stories260K,
// trained on TinyStories) that has never seen an instruction or a chat format and can only continue story text.
// Given the Alpaca prompt ("Below is an instruction ... ### Instruction: ...") such a model writes about
// instructions and responses, or nonsense; given the first sentence of a story it writes the story.
//
// The last user message is the request; when it holds an Alpaca prompt (as generate-data sends), the text of
// its "### Instruction:" block is. If the request asks for a story "about X" ("Write a short story about a cat
// named Tom."), the prompt is "Once upon a time, there was X." (X up to the end of its sentence or clause), so the
// model continues a story about X; otherwise the prompt is "Once upon a time," and the model tells a story of its
// own. Other constraints of the request (words to mention, a length, an ending) are not rendered: the model could
// not follow them in words, and a scorer that reads them from the request (serve --reward-model rules) picks the
// samples that do. System messages and earlier turns are ignored.
type story struct{}

func (story) Name() string { return "story" }

var (
	alpacaInstructionRe = regexp.MustCompile(`(?s)### Instruction:\n(.*?)(?:\n\n### Input:|\n\n### Response:|$)`)
	storyAboutRe        = regexp.MustCompile(`(?i)\bstory\b[^.!?]*?\babout\s+([^.!?,;:\n]+)`)
)

// StoryOpening is the prompt the story template renders for a request (see the template's doc).
func StoryOpening(request string) string {
	if m := alpacaInstructionRe.FindStringSubmatch(request); m != nil {
		request = m[1]
	}
	if m := storyAboutRe.FindStringSubmatch(request); m != nil {
		if subject := strings.TrimSpace(m[1]); subject != "" {
			return "Once upon a time, there was " + subject + "."
		}
	}
	return "Once upon a time,"
}

func (story) Render(msgs []Message) (string, error) {
	if err := checkRoles("story", msgs); err != nil {
		return "", err
	}
	last := ""
	for _, m := range msgs {
		if m.Role == RoleUser {
			last = m.Content
		}
	}
	return StoryOpening(last), nil
}
