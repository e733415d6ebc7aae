package evaluate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// answerRow is one row of an answers file: {question_id, answer}, or "text"/"output"/"response", or FastChat's
// model-answer shape {question_id, choices: [{turns: [...]}]}.
type answerRow struct {
	QuestionID json.RawMessage `json:"question_id"`
	ID         json.RawMessage `json:"id"`
	Answer     *string         `json:"answer"`
	Text       *string         `json:"text"`
	Output     *string         `json:"output"`
	Response   *string         `json:"response"`
	Choices    []struct {
		Turns []string `json:"turns"`
	} `json:"choices"`
}

func parseAnswerRow(b []byte) (id, answer string, err error) {
	var row answerRow
	if err := json.Unmarshal(b, &row); err != nil {
		return "", "", fmt.Errorf("not a JSON object: %w", err)
	}
	id = scalarText(row.QuestionID)
	if id == "" {
		id = scalarText(row.ID)
	}
	if id == "" {
		return "", "", fmt.Errorf("no question_id")
	}
	for _, s := range []*string{row.Answer, row.Text, row.Output, row.Response} {
		if s != nil {
			return id, *s, nil
		}
	}
	if len(row.Choices) > 0 && len(row.Choices[0].Turns) > 0 {
		return id, row.Choices[0].Turns[0], nil
	}
	return "", "", fmt.Errorf("no answer (answer, text, output, response or choices[0].turns[0])")
}

// ValidateAnswerLine checks one row of an uploaded answers file (the "eval-answers" purpose).
func ValidateAnswerLine(b []byte) error {
	_, _, err := parseAnswerRow(b)
	return err
}

// ParseAnswers reads an answers file into question id -> answer; a repeated id is an error.
func ParseAnswers(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		id, ans, err := parseAnswerRow(b)
		if err != nil {
			return nil, fmt.Errorf("evaluate: answers line %d: %w", line, err)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("evaluate: answers line %d: question id %q repeats", line, id)
		}
		out[id] = ans
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: read answers: %w", err)
	}
	return out, nil
}
