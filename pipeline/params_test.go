package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/bestofn/bestofn/jobs"
)

// TestSamplingParamsRefused checks that feedback and ab-report refuse at submission the sampling values that
// every candidate or rating request would fail on (a 400 naming the field, nothing queued), as generate-data
// does, and that each bound names the field that broke it.
func TestSamplingParamsRefused(t *testing.T) {
	in := writeFile(t, "in.jsonl", sixInstructions)
	teacherCfg := `"teacher":{"base_url":"http://127.0.0.1:1/v1","model":"m"}`
	fb := `"input_path":"` + in + `",` + teacherCfg + `,"sources":[{"kind":"openai","endpoint":{"base_url":"http://127.0.0.1:1/v1","model":"m"}}]`
	ab := `"ab_log":"` + in + `",` + teacherCfg
	for _, c := range []struct {
		typ    jobs.Type
		params string
		field  string
	}{
		{feedbackType{}, `{` + fb + `}`, ""},
		{feedbackType{}, `{` + fb + `,"temperature":-1}`, "temperature"},
		{feedbackType{}, `{` + fb + `,"temperature":2.5}`, "temperature"},
		{feedbackType{}, `{` + fb + `,"top_p":0}`, "top_p"},
		{feedbackType{}, `{` + fb + `,"rating_temperature":-0.5}`, "rating_temperature"},
		{feedbackType{}, `{` + fb + `,"rating_max_tokens":-1}`, "rating_max_tokens"},
		{feedbackType{}, `{` + fb + `,"limit":-1}`, "limit"},
		{abReportType{}, `{` + ab + `}`, ""},
		{abReportType{}, `{` + ab + `,"rating_temperature":3}`, "rating_temperature"},
		{abReportType{}, `{` + ab + `,"rating_max_tokens":-1}`, "rating_max_tokens"},
		{abReportType{}, `{` + ab + `,"treatment":"B","control":"B"}`, "control"},
		{abReportType{}, `{` + ab + `,"treatment":"B"}`, "control"},
	} {
		err := c.typ.Validate(context.Background(), json.RawMessage(c.params), nil)
		var pe *jobs.ParamError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s %s: %v", c.typ.Name(), c.params, err)
		case c.field != "" && (!errors.As(err, &pe) || pe.Field != c.field):
			t.Errorf("%s %s: %v, want a ParamError on %s", c.typ.Name(), c.params, err, c.field)
		}
	}
}
