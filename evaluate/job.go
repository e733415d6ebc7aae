package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bestofn/bestofn/jobs"
)

// TypeName is the job type's name.
const TypeName = "evaluate"

// File purposes of the inputs.
const (
	PurposeQuestions = "eval-questions"
	PurposeAnswers   = "eval-answers"
)

// Types returns the job types of this package, for cmd/bestofn to register.
func Types() []jobs.Type { return []jobs.Type{Type{}} }

// Purposes returns the file purposes of this package's inputs, with their row checks.
func Purposes() []jobs.Purpose {
	return []jobs.Purpose{
		{Name: PurposeQuestions, Description: "question set for evaluate (JSONL: Vicuna, MT-Bench, user-oriented, IFEval rows)", ValidateLine: ValidateQuestionLine},
		{Name: PurposeAnswers, Description: "answers of a system for evaluate (JSONL rows {question_id, answer})", ValidateLine: ValidateAnswerLine},
	}
}

// Type is the evaluate job type.
type Type struct{}

// Name implements jobs.Type.
func (Type) Name() string { return TypeName }

// Validate implements jobs.Type: params are checked field by field, and the files they name must exist.
func (Type) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p Params
	if err := jobs.DecodeParams(params, &p); err != nil {
		return err
	}
	if _, err := p.check(); err != nil {
		return err
	}
	check := func(field, id string) error {
		if id == "" || files == nil {
			return nil
		}
		if _, err := files.File(ctx, id); err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return paramErr(field, "no file %q", id)
			}
			return err
		}
		return nil
	}
	dirCheck := func(field string, ref *RewardModelRef) error {
		if ref == nil || ref.Path == "" {
			return nil
		}
		if st, err := os.Stat(filepath.Join(ref.Path, "config.json")); err != nil || st.IsDir() {
			return paramErr(field+".path", "%q is not a reward model directory (no config.json)", ref.Path)
		}
		return nil
	}
	if err := dirCheck("judges.reward", p.Judges.Reward); err != nil {
		return err
	}
	for i, g := range p.Groups {
		if err := dirCheck(fmt.Sprintf("groups[%d].rank_reward_model", i), g.RankRewardModel); err != nil {
			return err
		}
	}
	if err := check("questions_file", p.QuestionsFile); err != nil {
		return err
	}
	for i, g := range p.Groups {
		if err := check(fmt.Sprintf("groups[%d].answers_file", i), g.AnswersFile); err != nil {
			return err
		}
	}
	return check("opponent.answers_file", p.Opponent.AnswersFile)
}

// Run implements jobs.Type. Answers and judgments are per-item outputs, so a resumed job asks nothing twice.
func (Type) Run(ctx context.Context, r *jobs.Run) error {
	var p Params
	if err := r.DecodeParams(&p); err != nil {
		return err // a *jobs.ParamError: recorded as invalid_input
	}
	_, err := run(ctx, p, runEnv{r})
	var je *jobsError
	if errors.As(err, &je) {
		return &jobs.JobError{Code: je.code, Message: je.Error()}
	}
	return err
}

// runEnv adapts a *jobs.Run.
type runEnv struct{ r *jobs.Run }

func (e runEnv) rows(name string) (rowStore, error) { return e.r.Output(name) }

func (e runEnv) openFile(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, _, err := e.r.OpenFile(ctx, id)
	return rc, err
}

func (e runEnv) rewardModelDir(ctx context.Context, ref RewardModelRef) (string, error) {
	if ref.Path != "" {
		return ref.Path, nil
	}
	dir, _, err := e.r.ModelPath(ctx, ref.Name, ref.Version)
	return dir, err
}

func (e runEnv) progress(done, total int64, unit string) { e.r.Progress(done, total, unit) }
func (e runEnv) event(level, msg string, data any)       { e.r.Event(level, msg, data) }

func (e runEnv) publish(ctx context.Context, name, purpose string, content []byte) error {
	_, err := e.r.PublishFile(ctx, name, purpose, bytes.NewReader(content))
	return err
}

func (e runEnv) setResult(v any) error { return e.r.SetResult(v) }
