package evaluate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bestofn/bestofn/rules"
)

// Question is one item of a question set.
type Question struct {
	// ID is the row's question_id, id or key, as text; the 1-based line number when it has none.
	ID       string `json:"question_id"`
	Category string `json:"category"`
	// Text is what the systems are asked: text, prompt, instruction (with its input), or the first turn.
	Text string `json:"text"`
	// Reference is a reference answer for ROUGE-L, when the set has one.
	Reference string `json:"reference,omitempty"`
	// Rules are the verifiable instructions the row carries (instruction_id_list and kwargs).
	Rules rules.Spec `json:"rules,omitempty"`

	instructions []rules.Instruction
}

// questionRow is the union of the row shapes that load as they are: Vicuna-80 {question_id, text, category},
// MT-Bench {question_id, category, turns}, the user-oriented instructions {id, motivation_app, instruction,
// instances: [{input, output}]}, Alpaca {instruction, input, output}, IFEval {key, prompt, instruction_id_list,
// kwargs}, and bestofn's own {question_id, prompt, category, reference, instruction_id_list, kwargs}.
type questionRow struct {
	QuestionID    json.RawMessage `json:"question_id"`
	ID            json.RawMessage `json:"id"`
	Key           json.RawMessage `json:"key"`
	Category      string          `json:"category"`
	MotivationApp string          `json:"motivation_app"`
	Text          string          `json:"text"`
	Prompt        string          `json:"prompt"`
	Instruction   string          `json:"instruction"`
	Input         string          `json:"input"`
	Output        string          `json:"output"`
	Reference     json.RawMessage `json:"reference"`
	Turns         []string        `json:"turns"`
	Instances     []struct {
		Input  string `json:"input"`
		Output string `json:"output"`
	} `json:"instances"`
	rules.Spec
}

// ParseQuestions reads a JSONL question set. limit > 0 keeps the first limit questions. A row that has no
// question text, a duplicate id, or rules that do not parse is an error naming its line.
func ParseQuestions(r io.Reader, limit int) ([]Question, error) {
	var out []Question
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		q, err := parseQuestion(b, line)
		if err != nil {
			return nil, fmt.Errorf("evaluate: questions line %d: %w", line, err)
		}
		if prev, dup := seen[q.ID]; dup {
			return nil, fmt.Errorf("evaluate: questions line %d: question id %q repeats line %d", line, q.ID, prev)
		}
		seen[q.ID] = line
		out = append(out, q)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: read questions: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("evaluate: the question set is empty")
	}
	return out, nil
}

// ValidateQuestionLine checks one row of an uploaded question set (the "eval-questions" purpose).
func ValidateQuestionLine(b []byte) error {
	_, err := parseQuestion(b, 1)
	return err
}

func parseQuestion(b []byte, line int) (Question, error) {
	var row questionRow
	if err := json.Unmarshal(b, &row); err != nil {
		return Question{}, fmt.Errorf("not a JSON object: %w", err)
	}
	q := Question{Category: row.Category, Rules: row.Spec}
	if q.Category == "" {
		q.Category = row.MotivationApp
	}
	if q.Category == "" {
		q.Category = "general"
	}
	for _, raw := range []json.RawMessage{row.QuestionID, row.ID, row.Key} {
		if id := scalarText(raw); id != "" {
			q.ID = id
			break
		}
	}
	if q.ID == "" {
		q.ID = strconv.Itoa(line)
	}
	switch {
	case row.Text != "":
		q.Text = row.Text
	case row.Prompt != "":
		q.Text = row.Prompt
	case len(row.Turns) > 0:
		q.Text = row.Turns[0] // MT-Bench: the first turn
	case row.Instruction != "":
		q.Text = row.Instruction
		input := row.Input
		if len(row.Instances) > 0 {
			input = row.Instances[0].Input
			q.Reference = row.Instances[0].Output
		}
		if strings.TrimSpace(input) != "" {
			q.Text += "\n\n" + input
		}
	}
	if strings.TrimSpace(q.Text) == "" {
		return Question{}, fmt.Errorf("no question text (text, prompt, turns or instruction)")
	}
	if q.Reference == "" {
		q.Reference = row.Output
	}
	if len(row.Reference) > 0 && row.Reference[0] == '"' {
		_ = json.Unmarshal(row.Reference, &q.Reference)
	}
	ins, err := row.Spec.Instructions()
	if err != nil {
		return Question{}, err
	}
	q.instructions = ins
	return q, nil
}

func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number as written
}
