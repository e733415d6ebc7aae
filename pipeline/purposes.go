package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/trainjobs"
)

// File purposes of the pipeline's uploads and outputs (names agreed with the training job types).
const (
	// PurposeInstructions: instruction rows for generate-data and feedback (see ReadInstructions).
	PurposeInstructions = "instructions"
	// PurposeComparisons: the paper's comparison rows {user_input, responses_and_scores: [{response, score,
	// source}]}.
	PurposeComparisons = "comparisons"
	// PurposePreferences: TRL reward-training pairs {prompt?, chosen, rejected, margin?}, train-reward's input
	// (the purpose is package trainjobs', which registers it).
	PurposePreferences = trainjobs.PurposePreferences
	// PurposeSFT: supervised fine-tuning rows, Alpaca {instruction, input?, output} or chat {messages}, sft's
	// input (package trainjobs' purpose).
	PurposeSFT = trainjobs.PurposeSFT
	// PurposeABLog: a server's A/B log (server.ABRecord rows).
	PurposeABLog = "ab-log"
	// PurposeAnswers: answers to prompts, a feedback source {instruction|prompt|user_input, output|response}.
	PurposeAnswers = "answers"
)

// Purposes returns the upload purposes of the pipeline with their per-line checks, for cmd/bestofn to
// register with the platform. The job types also publish files of trainjobs' purposes (PurposePreferences,
// PurposeSFT): register trainjobs.Purposes() too.
func Purposes() []jobs.Purpose {
	return []jobs.Purpose{
		{Name: PurposeInstructions, Description: "instruction rows: Alpaca {instruction, input}, Self-Instruct {instruction, instances}, Vicuna {text}, MT-Bench {turns}, {prompt}", ValidateLine: validateInstruction},
		{Name: PurposeComparisons, Description: "comparison rows {user_input, responses_and_scores: [{response, score, source}]}", ValidateLine: validateComparison},
		{Name: PurposeABLog, Description: "A/B log rows of a bestofn server {request_id, variant, prompt, answer, ...}", ValidateLine: validateABLine},
		{Name: PurposeAnswers, Description: "answers {instruction|prompt|user_input, input?, output|response, source?}", ValidateLine: validateAnswer},
	}
}

func validateInstruction(line []byte) error {
	_, err := rowInstructions(line)
	return err
}

func validateComparison(line []byte) error {
	var r struct {
		UserInput          *string `json:"user_input"`
		ResponsesAndScores []struct {
			Response *string  `json:"response"`
			Score    *float64 `json:"score"`
			Source   string   `json:"source"`
		} `json:"responses_and_scores"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("not a comparison row: %v", err)
	}
	if r.UserInput == nil || strings.TrimSpace(*r.UserInput) == "" {
		return errors.New(`"user_input" must be a non-empty string`)
	}
	if len(r.ResponsesAndScores) == 0 {
		return errors.New(`"responses_and_scores" must hold at least one {response, score, source}`)
	}
	for i, rs := range r.ResponsesAndScores {
		if rs.Response == nil {
			return fmt.Errorf("responses_and_scores[%d]: \"response\" is missing", i)
		}
		if rs.Score == nil {
			return fmt.Errorf("responses_and_scores[%d]: \"score\" must be a number", i)
		}
	}
	return nil
}

func validateABLine(line []byte) error {
	var r ABRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("not an A/B log row: %v", err)
	}
	if r.Variant == "" || r.Prompt == "" {
		return errors.New(`"variant" and "prompt" are required`)
	}
	return nil
}

func validateAnswer(line []byte) error {
	_, err := parseAnswerRow(line)
	return err
}
