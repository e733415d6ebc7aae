package trainjobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/bestofn/bestofn/chat"
)

// Reasons a row is refused or skipped, as counted in a job's result (skipped_rows).
const (
	ReasonInvalidJSON      = "invalid_json"        // the line is not one JSON object
	ReasonMissingField     = "missing_field"       // a required field is absent or null
	ReasonWrongType        = "wrong_type"          // a field has another JSON type than the format's
	ReasonEmptyText        = "empty_text"          // a required text is empty (or only white space)
	ReasonUnknownFormat    = "unknown_format"      // neither of the formats the data kind accepts
	ReasonTemplateMismatch = "template_mismatch"   // an implicit-prompt row that does not follow the reward template
	ReasonIdentical        = "identical_responses" // chosen and rejected are the same text: nothing to learn
	ReasonNoScoreGap       = "no_score_difference" // a comparison row whose responses all have the same score
	ReasonTooLong          = "prompt_too_long"     // an SFT prompt that leaves no room for the response in max_length
)

// RowError is a bad row of an input file: which file and line, the reason (one of the Reason constants) and what
// is wrong.
type RowError struct {
	File   string // file id
	Line   int    // 1-based
	Reason string
	Msg    string
}

func (e *RowError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("file %s line %d: %s", e.File, e.Line, e.Msg)
}

func rowErr(reason, format string, args ...any) *RowError {
	return &RowError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// row is one JSONL line decoded as an object, with typed accessors that report what is wrong.
type row map[string]json.RawMessage

func decodeRow(line []byte) (row, *RowError) {
	var r row
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil || r == nil {
		msg := "not a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, rowErr(ReasonInvalidJSON, "%s", msg)
	}
	if dec.More() {
		return nil, rowErr(ReasonInvalidJSON, "more than one JSON value on the line")
	}
	return r, nil
}

func (r row) has(field string) bool {
	v, ok := r[field]
	return ok && string(v) != "null"
}

// text returns a string field; required fields must be present and not blank.
func (r row) text(field string, required bool) (string, *RowError) {
	v, ok := r[field]
	if !ok || string(v) == "null" {
		if required {
			return "", rowErr(ReasonMissingField, "missing field %q", field)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", rowErr(ReasonWrongType, "field %q must be a string, not %s", field, jsonKind(v))
	}
	if required && strings.TrimSpace(s) == "" {
		return "", rowErr(ReasonEmptyText, "field %q is empty", field)
	}
	return s, nil
}

// number returns an optional finite number field (ok false when absent).
func (r row) number(field string) (float64, bool, *RowError) {
	v, ok := r[field]
	if !ok || string(v) == "null" {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, false, rowErr(ReasonWrongType, "field %q must be a number, not %s", field, jsonKind(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, rowErr(ReasonWrongType, "field %q must be a finite number", field)
	}
	return f, true, nil
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(v json.RawMessage) string {
	s := bytes.TrimSpace(v)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// Preference is one preference row, either format: TRL's {prompt?, chosen, rejected, margin?} or the paper's
// comparison data {user_input, responses_and_scores: [{response, score, source}]}.
type Preference struct {
	// Prompt is TRL's prompt or the comparison row's user_input; "" for an implicit-prompt row, whose Chosen and
	// Rejected are whole dialogues (HH-RLHF).
	Prompt string
	// Chosen and Rejected are set for a TRL row.
	Chosen, Rejected string
	// Margin is TRL's margin column (HasMargin when present).
	Margin    float64
	HasMargin bool
	// Responses are a comparison row's responses with their scores.
	Responses []ScoredResponse
}

// ScoredResponse is one response of a comparison row.
type ScoredResponse struct {
	Response string
	Score    float64
	Source   string
}

// ParsePreference decodes one line of preference data (see Preference). It checks structure only (fields,
// types, non-empty texts); whether an implicit-prompt row follows the reward template, and which pairs a row
// makes, depends on the job (Pairs).
func ParsePreference(line []byte) (Preference, *RowError) {
	r, err := decodeRow(line)
	if err != nil {
		return Preference{}, err
	}
	var p Preference
	switch {
	case r.has("responses_and_scores") || r.has("user_input"):
		if p.Prompt, err = r.text("user_input", true); err != nil {
			return p, err
		}
		raw, ok := r["responses_and_scores"]
		if !ok || string(raw) == "null" {
			return p, rowErr(ReasonMissingField, "missing field %q", "responses_and_scores")
		}
		var items []row
		if json.Unmarshal(raw, &items) != nil {
			return p, rowErr(ReasonWrongType, "field %q must be an array of objects, not %s", "responses_and_scores", jsonKind(raw))
		}
		if len(items) < 2 {
			return p, rowErr(ReasonMissingField, "responses_and_scores holds %d responses, a comparison needs 2", len(items))
		}
		for i, it := range items {
			if it == nil {
				return p, rowErr(ReasonWrongType, "responses_and_scores[%d] must be an object", i)
			}
			var s ScoredResponse
			if s.Response, err = it.text("response", true); err != nil {
				err.Msg = fmt.Sprintf("responses_and_scores[%d]: %s", i, err.Msg)
				return p, err
			}
			score, ok, err := it.number("score")
			if err == nil && !ok {
				err = rowErr(ReasonMissingField, "missing field %q", "score")
			}
			if err != nil {
				err.Msg = fmt.Sprintf("responses_and_scores[%d]: %s", i, err.Msg)
				return p, err
			}
			s.Score = score
			if s.Source, err = it.text("source", false); err != nil {
				err.Msg = fmt.Sprintf("responses_and_scores[%d]: %s", i, err.Msg)
				return p, err
			}
			p.Responses = append(p.Responses, s)
		}
	case r.has("chosen") || r.has("rejected"):
		if p.Prompt, err = r.text("prompt", false); err != nil {
			return p, err
		}
		if r.has("prompt") && strings.TrimSpace(p.Prompt) == "" {
			return p, rowErr(ReasonEmptyText, "field %q is empty", "prompt")
		}
		if p.Chosen, err = r.text("chosen", true); err != nil {
			return p, err
		}
		if p.Rejected, err = r.text("rejected", true); err != nil {
			return p, err
		}
		if p.Margin, p.HasMargin, err = r.number("margin"); err != nil {
			return p, err
		}
	default:
		return p, rowErr(ReasonUnknownFormat, "neither a preference pair {prompt?, chosen, rejected, margin?} nor a comparison {user_input, responses_and_scores}")
	}
	return p, nil
}

// SFTExample is one supervised fine-tuning row: Alpaca's {instruction, input?, output} or a chat {messages:
// [{role, content}]} whose last message is the assistant's answer (the trained response).
type SFTExample struct {
	// Messages is the conversation up to the answer: for an Alpaca row the instruction, then its input as a
	// second user message when there is one (chat's Alpaca template renders that pair as Algorithm 1 does).
	Messages []chat.Message
	// Response is the answer the loss is computed on.
	Response string
}

// ParseSFT decodes one line of SFT data (see SFTExample).
func ParseSFT(line []byte) (SFTExample, *RowError) {
	r, err := decodeRow(line)
	if err != nil {
		return SFTExample{}, err
	}
	var ex SFTExample
	switch {
	case r.has("messages"):
		raw := r["messages"]
		var msgs []row
		if json.Unmarshal(raw, &msgs) != nil {
			return ex, rowErr(ReasonWrongType, "field %q must be an array of objects, not %s", "messages", jsonKind(raw))
		}
		if len(msgs) < 2 {
			return ex, rowErr(ReasonMissingField, "messages holds %d messages, want a user message and the assistant's answer", len(msgs))
		}
		for i, m := range msgs {
			if m == nil {
				return ex, rowErr(ReasonWrongType, "messages[%d] must be an object", i)
			}
			role, err := m.text("role", true)
			if err == nil && role != chat.RoleSystem && role != chat.RoleUser && role != chat.RoleAssistant {
				err = rowErr(ReasonWrongType, "role %q (want system, user or assistant)", role)
			}
			if err != nil {
				err.Msg = fmt.Sprintf("messages[%d]: %s", i, err.Msg)
				return ex, err
			}
			content, err := m.text("content", role != chat.RoleSystem)
			if err != nil {
				err.Msg = fmt.Sprintf("messages[%d]: %s", i, err.Msg)
				return ex, err
			}
			ex.Messages = append(ex.Messages, chat.Message{Role: role, Content: content})
		}
		last := ex.Messages[len(ex.Messages)-1]
		if last.Role != chat.RoleAssistant {
			return ex, rowErr(ReasonMissingField, "the last message is from %q: the trained answer must be the assistant's", last.Role)
		}
		ex.Response, ex.Messages = last.Content, ex.Messages[:len(ex.Messages)-1]
		if ex.Messages[len(ex.Messages)-1].Role != chat.RoleUser {
			return ex, rowErr(ReasonMissingField, "the answer must follow a user message, not a %q one", ex.Messages[len(ex.Messages)-1].Role)
		}
	case r.has("instruction") || r.has("output"):
		instruction, err := r.text("instruction", true)
		if err != nil {
			return ex, err
		}
		input, err := r.text("input", false)
		if err != nil {
			return ex, err
		}
		if ex.Response, err = r.text("output", true); err != nil {
			return ex, err
		}
		ex.Messages = []chat.Message{{Role: chat.RoleUser, Content: instruction}}
		if strings.TrimSpace(input) != "" {
			ex.Messages = append(ex.Messages, chat.Message{Role: chat.RoleUser, Content: input})
		}
	default:
		return ex, rowErr(ReasonUnknownFormat, "neither an Alpaca row {instruction, input?, output} nor a chat row {messages}")
	}
	return ex, nil
}
