package main

import (
	"github.com/bestofn/bestofn/evaluate"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/cpuburn"
	"github.com/bestofn/bestofn/pipeline"
	"github.com/bestofn/bestofn/trainjobs"
)

// jobTypes lists every job type this binary runs and accepts (serve and `job run`). Add a type here.
func jobTypes() []jobs.Type {
	types := []jobs.Type{
		jobs.Count{},   // "count": the platform's built-in demo and test type
		cpuburn.Type{}, // "cpu-burn": keeps --job-threads busy, to check serving latency under a job
	}
	types = append(types, pipeline.Types(pipeline.Options{})...)   // generate-data, feedback, ab-report
	types = append(types, trainjobs.Types(trainjobs.Options{})...) // train-reward, sft
	types = append(types, evaluate.Types()...)                     // evaluate
	return types
}

// filePurposes lists the upload purposes besides the platform's built-in ones (model, reward-model,
// results); a purpose that says what its rows look like has uploads checked line by line. Add the job types'
// purposes here.
func filePurposes() []jobs.Purpose {
	purposes := []jobs.Purpose{
		{Name: "jsonl", Description: "JSON lines: one JSON object per line", ValidateLine: jobs.JSONObjectLine()},
	}
	purposes = append(purposes, pipeline.Purposes()...)
	purposes = append(purposes, trainjobs.Purposes()...)
	purposes = append(purposes, evaluate.Purposes()...)
	return purposes
}
