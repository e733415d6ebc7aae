package trainjobs

import (
	"fmt"
	"strings"

	"github.com/bestofn/bestofn/train"
)

// DefaultRewardTemplate joins prompt and response as HH-RLHF's dialogues are written; it is package reward's
// default template too.
const DefaultRewardTemplate = "\n\nHuman: {prompt}\n\nAssistant: {response}"

// rmTemplate is a reward model's template split around {response}: before still holds {prompt} (at most
// once), after follows the response.
type rmTemplate struct {
	text, before, after string
}

// parseRMTemplate checks a template as package reward does: "{response}" once, "{prompt}" at most once and
// before it.
func parseRMTemplate(t string) (rmTemplate, error) {
	if strings.Count(t, "{response}") != 1 || strings.Count(t, "{prompt}") > 1 {
		return rmTemplate{}, fmt.Errorf("template %q must contain {response} once and {prompt} at most once", t)
	}
	before, after, _ := strings.Cut(t, "{response}")
	if strings.Contains(after, "{prompt}") {
		return rmTemplate{}, fmt.Errorf("template %q has {prompt} after {response}", t)
	}
	return rmTemplate{text: t, before: before, after: after}, nil
}

// prefix is the rendered text before the response.
func (t rmTemplate) prefix(prompt string) string {
	return strings.Replace(t.before, "{prompt}", prompt, 1)
}

// splitDialogue parses a whole text the template rendered (an implicit-prompt row, e.g. an HH-RLHF dialogue)
// into its prompt and response. The prompt is everything between the template's opening text and the last
// occurrence of its text between {prompt} and {response}, so a multi-turn dialogue's earlier turns belong to the
// prompt and the last assistant turn is the response.
func (t rmTemplate) splitDialogue(text string) (prompt, response string, ok bool) {
	if !strings.HasSuffix(text, t.after) {
		return "", "", false
	}
	text = text[:len(text)-len(t.after)]
	head, mid, hasPrompt := strings.Cut(t.before, "{prompt}")
	if !hasPrompt {
		response, ok = strings.CutPrefix(text, t.before)
		return "", response, ok
	}
	rest, ok := strings.CutPrefix(text, head)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, mid)
	if i < 0 || (mid == "" && head == "") {
		return "", "", false
	}
	return rest[:i], rest[i+len(mid):], true
}

// textPair is one comparison as texts: a prompt and two responses, as the template renders them.
type textPair struct {
	prompt, chosen, rejected string
	margin                   float64
}

// pairs returns the comparisons a preference row makes under template t: one for a TRL row (an implicit
// prompt is parsed from the dialogues, which must share it), and one for every two responses of different
// scores of a comparison row (the higher chosen; the margin the score gap). useMargin keeps TRL's margin column
// and the score gaps, else margins are 0. A row that makes no pair returns a *RowError whose reason says why.
func (p Preference) pairs(t rmTemplate, useMargin bool) ([]textPair, *RowError) {
	if len(p.Responses) > 0 {
		var out []textPair
		for i, a := range p.Responses {
			for _, b := range p.Responses[i+1:] {
				if a.Score == b.Score {
					continue
				}
				hi, lo := a, b
				if b.Score > a.Score {
					hi, lo = b, a
				}
				if hi.Response == lo.Response {
					continue
				}
				tp := textPair{prompt: p.Prompt, chosen: hi.Response, rejected: lo.Response}
				if useMargin {
					tp.margin = hi.Score - lo.Score
				}
				out = append(out, tp)
			}
		}
		if len(out) == 0 {
			return nil, rowErr(ReasonNoScoreGap, "no two different responses with different scores")
		}
		return out, nil
	}
	tp := textPair{prompt: p.Prompt, chosen: p.Chosen, rejected: p.Rejected}
	if p.Prompt == "" {
		pc, rc, ok1 := t.splitDialogue(p.Chosen)
		pr, rr, ok2 := t.splitDialogue(p.Rejected)
		switch {
		case !ok1 || !ok2:
			return nil, rowErr(ReasonTemplateMismatch, "no prompt field, and chosen or rejected is not a dialogue in the template %q", t.text)
		case pc != pr:
			return nil, rowErr(ReasonTemplateMismatch, "no prompt field, and chosen and rejected are dialogues with different prompts")
		}
		tp.prompt, tp.chosen, tp.rejected = pc, rc, rr
	}
	if tp.chosen == tp.rejected {
		return nil, rowErr(ReasonIdentical, "chosen and rejected are the same response")
	}
	if useMargin && p.HasMargin {
		tp.margin = p.Margin
	}
	return []textPair{tp}, nil
}

// rewardEncoder returns the tokenization of (prompt, response) package reward uses when it serves the exported
// model: package train's reward encoder (BOS, the template's rendering with special tokens parsed, prompt
// tokens dropped from the left first when too long) over the template, and with appendEOS an EOS after it, for
// which the truncation leaves room as reward's does for a tokenizer.json that appends one.
func rewardEncoder(tok train.Tokenizer, t rmTemplate, maxLen int, appendEOS bool) func(prompt, response string) ([]int32, bool) {
	enc := train.RewardEncoder{Tok: tok, MaxLen: maxLen}
	if appendEOS {
		enc.MaxLen--
	}
	return func(prompt, response string) ([]int32, bool) {
		prefix := t.prefix(prompt)
		ids, truncated := enc.EncodeText(prefix+response+t.after, len(prefix))
		if appendEOS {
			ids = append(ids, tok.EOS())
		}
		return ids, truncated
	}
}
