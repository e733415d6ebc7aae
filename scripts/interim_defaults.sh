#!/usr/bin/env bash
# Makes the INTERIM default generator, defaults/generator.gguf, until issue 13's recipe ships the real one: the
# `sft` job, run briefly through a real server's admin API, fine-tunes stories260K (../shared/models, MIT) on
# Alpaca rows made from the 175 Self-Instruct seed tasks (../shared/data, Apache-2.0). The interim reward model,
# defaults/reward-model/, is a copy of reward/testdata/tiny-rm (trained by scripts/train_reward.py on HH-RLHF).
# Deterministic for the seed (the sft job's output is byte-for-byte repeatable).
#
# Usage: scripts/interim_defaults.sh [OUT.gguf]     (default OUT: defaults/generator.gguf)
# Prints the job's result (metrics) as JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-defaults/generator.gguf}
shared=../shared
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/bestofn" ./cmd/bestofn
bin=$work/bestofn
export BESTOFN_ADMIN_TOKEN=interim-defaults-$$
"$bin" serve --addr 127.0.0.1:0 --model "$shared/models/stories260K/stories260K.gguf" --reward-model "" \
  --threads 1 --data-dir "$work/data" --job-threads "${JOB_THREADS:-1}" >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 300); do
  addr=$(sed -n 's/^bestofn: listening on //p' "$work/serve.out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.2
done
[ -n "$addr" ] || { echo "interim_defaults: the server did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
export BESTOFN_SERVER=http://$addr

jq -c '{instruction, input: (.instances[0].input // ""), output: .instances[0].output}' \
  "$shared/data/self_instruct_seed_tasks_175.jsonl" >"$work/seed_alpaca.jsonl"
base=$("$bin" files upload "$shared/models/stories260K/stories260K.gguf" --purpose model | jq -r .id)
data=$("$bin" files upload "$work/seed_alpaca.jsonl" --purpose sft-data | jq -r .id)
params=$(jq -nc --arg base "$base" --arg data "$data" '{base_file: $base, training_files: [$data], template: "alpaca",
  epochs: 3, batch_size: 8, learning_rate: 0.001, max_length: 256, seed: 1, eval_fraction: 0.1,
  model_name: "interim-default", gguf_type: "F32"}')
job=$("$bin" job submit sft --params "$params" | jq -r .id)
"$bin" job wait "$job" >&2
"$bin" job show "$job" >"$work/job.json"
[ "$(jq -r .status "$work/job.json")" = succeeded ] || { cat "$work/job.json" >&2; exit 1; }
fid=$(jq -r '.result.model.file_id' "$work/job.json")
"$bin" files download "$fid" -o "$out"
jq '{job: .id, params: .params, result: .result}' "$work/job.json"
echo "interim_defaults: wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-64))" >&2
