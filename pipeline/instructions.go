package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Instruction is one task for the teacher: the paper's {instruction, input} pair.
type Instruction struct {
	// ID is the source row's id ("seed_task_0", a question_id), "" when it has none.
	ID          string `json:"id,omitempty"`
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	// Category is the question set's category, when it has one (Vicuna, MT-Bench).
	Category string `json:"category,omitempty"`
}

// Prompt is the instruction as one user turn: the instruction, then a blank line and the input when there is
// one (the paper's comparison data's user_input).
func (in Instruction) Prompt() string {
	if in.Input == "" {
		return in.Instruction
	}
	return in.Instruction + "\n\n" + in.Input
}

// key identifies an instruction for deduplication: identical instruction and input after trimming spaces.
func (in Instruction) key() string {
	return strings.TrimSpace(in.Instruction) + "\x00" + strings.TrimSpace(in.Input)
}

// instructionRow is every row shape ReadInstructions maps.
type instructionRow struct {
	ID          json.RawMessage `json:"id"`
	QuestionID  json.RawMessage `json:"question_id"`
	Instruction *string         `json:"instruction"`
	Input       *string         `json:"input"`
	Instances   []struct {
		Input string `json:"input"`
	} `json:"instances"`
	Text      *string  `json:"text"`
	Turns     []string `json:"turns"`
	Prompt    *string  `json:"prompt"`
	UserInput *string  `json:"user_input"`
	Category  string   `json:"category"`
}

// rowInstructions maps one row to its instructions:
//   - Alpaca and alpaca_gpt4_data rows {instruction, input?, output?}: one instruction (output ignored);
//   - Self-Instruct seed tasks and the user-oriented instructions {id, instruction, instances: [{input,
//     output}]}: one instruction per instance, its input the instance's input;
//   - Vicuna questions {question_id, text, category}: text is the instruction;
//   - MT-Bench {question_id, turns, category}: the first turn;
//   - {prompt} and comparison rows {user_input}: the prompt is the instruction.
func rowInstructions(line []byte) ([]Instruction, error) {
	var r instructionRow
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	id := rawID(r.ID)
	if id == "" {
		id = rawID(r.QuestionID)
	}
	base := Instruction{ID: id, Category: r.Category}
	switch {
	case r.Instruction != nil:
		base.Instruction = *r.Instruction
		if len(r.Instances) > 0 && r.Input == nil {
			out := make([]Instruction, 0, len(r.Instances))
			for _, inst := range r.Instances {
				in := base
				in.Input = inst.Input
				out = append(out, in)
			}
			return checkInstructions(out)
		}
		if r.Input != nil {
			base.Input = *r.Input
		}
	case r.Text != nil:
		base.Instruction = *r.Text
	case len(r.Turns) > 0:
		base.Instruction = r.Turns[0]
	case r.Prompt != nil:
		base.Instruction = *r.Prompt
	case r.UserInput != nil:
		base.Instruction = *r.UserInput
	default:
		return nil, errors.New(`no instruction: want "instruction" (Alpaca, Self-Instruct), "text" (Vicuna), "turns" (MT-Bench), "prompt" or "user_input"`)
	}
	return checkInstructions([]Instruction{base})
}

func checkInstructions(ins []Instruction) ([]Instruction, error) {
	for _, in := range ins {
		if strings.TrimSpace(in.Instruction) == "" {
			return nil, errors.New("empty instruction")
		}
	}
	return ins, nil
}

func rawID(b json.RawMessage) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return string(b) // a number
}

// ReadInstructions reads a JSONL file, or a JSON array (alpaca_data.json), of instruction rows (see
// rowInstructions for the shapes) in file order. A bad row is an error naming its line (JSONL) or index
// (array, 1-based).
func ReadInstructions(r io.Reader) ([]Instruction, error) {
	var out []Instruction
	err := eachRow(r, func(n int, row []byte) error {
		ins, err := rowInstructions(row)
		if err != nil {
			return err
		}
		out = append(out, ins...)
		return nil
	})
	return out, err
}

// eachRow calls fn on each row of a JSONL file or of a JSON array, with its 1-based line number (or index).
func eachRow(r io.Reader, fn func(n int, row []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return nil // empty file
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			br.ReadByte()
			continue
		}
		if b[0] == '[' {
			var rows []json.RawMessage
			if err := json.NewDecoder(br).Decode(&rows); err != nil {
				return fmt.Errorf("JSON array: %w", err)
			}
			for i, row := range rows {
				if err := fn(i+1, row); err != nil {
					return fmt.Errorf("row %d: %w", i+1, err)
				}
			}
			return nil
		}
		break
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// dedupe drops instructions identical (after trimming) to an earlier one, keeping the first; it returns the
// kept ones with their indices in ins.
func dedupe(ins []Instruction) (kept []Instruction, idx []int, dropped int) {
	seen := make(map[string]bool, len(ins))
	for i, in := range ins {
		k := in.key()
		if seen[k] {
			dropped++
			continue
		}
		seen[k] = true
		kept = append(kept, in)
		idx = append(idx, i)
	}
	return kept, idx, dropped
}

func itoa(i int) string { return strconv.Itoa(i) }
