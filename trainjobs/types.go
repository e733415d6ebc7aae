package trainjobs

import (
	"errors"

	"github.com/bestofn/bestofn/jobs"
)

// File purposes of training data, validated line by line on upload.
const (
	PurposePreferences = "preference-data" // TRL preference rows or the paper's comparison rows
	PurposeSFT         = "sft-data"        // Alpaca rows or chat rows
)

// Options configure the training job types.
type Options struct {
	// RewardExternal and SFTExternal are the external trainer commands of train-reward and sft (nil: none; a job
	// asking for "trainer": "external" is then refused).
	RewardExternal, SFTExternal *External
}

// Types returns the training job types, for jobs.Config.Types.
func Types(opts Options) []jobs.Type {
	return []jobs.Type{Reward{External: opts.RewardExternal}, SFT{External: opts.SFTExternal}}
}

// Purposes returns the purposes of training data files, for jobs.Config.Purposes: each line must be a row of
// the format (ParsePreference, ParseSFT), or the upload is refused naming the line.
func Purposes() []jobs.Purpose {
	return []jobs.Purpose{
		{Name: PurposePreferences, Description: "preference data for train-reward (JSONL): TRL rows {prompt?, chosen, rejected, margin?} or comparison rows {user_input, responses_and_scores: [{response, score, source}]}",
			ValidateLine: func(line []byte) error {
				if _, err := ParsePreference(line); err != nil {
					return errors.New(err.Msg)
				}
				return nil
			}},
		{Name: PurposeSFT, Description: "supervised fine-tuning data for sft (JSONL): Alpaca rows {instruction, input?, output} or chat rows {messages: [{role, content}]}",
			ValidateLine: func(line []byte) error {
				if _, err := ParseSFT(line); err != nil {
					return errors.New(err.Msg)
				}
				return nil
			}},
	}
}
