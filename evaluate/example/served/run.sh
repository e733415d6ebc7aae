#!/bin/bash
# One evaluate job end to end on this repository's own models (README.md, "Evaluation"):
# `bestofn serve` with stories260K and reward/testdata/tiny-rm; groups B and R1..R5 from one best_of 5 request
# per question to llama-gpt4:r1 (ranked by the server's tiny-rm); opponent: llama-gpt4 sampled once with other
# seeds; judges: the rule checks (every question carries verifiable instructions) and tiny-rm (the ranker
# itself, so biased towards R1). Run from the repository root after `go build -o bestofn ./cmd/bestofn`;
# outputs go to $OUT (default /tmp/bestofn-eval).
set -euo pipefail
BIN=${BIN:-./bestofn}
OUT=${OUT:-/tmp/bestofn-eval}
PORT=${PORT:-18431}
rm -rf "$OUT"; mkdir -p "$OUT/out"
$BIN serve --addr 127.0.0.1:$PORT --threads 2 --data-dir "$OUT/data" --admin-insecure-loopback \
  --reward-model reward/testdata/tiny-rm > "$OUT/serve.out" 2> "$OUT/serve.err" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do grep -q listening "$OUT/serve.out" && break; sleep 0.2; done
A=http://127.0.0.1:$PORT/admin/v1
Q=$(curl -s --data-binary @evaluate/example/served/questions.jsonl "$A/files?purpose=eval-questions&filename=questions.jsonl" | jq -r .id)
jq -n --arg q "$Q" --arg s "http://127.0.0.1:$PORT/v1" '{type: "evaluate", params: {
  questions_file: $q,
  groups: [{name: "R", k: 5, baseline: "B", endpoint: {base_url: $s, model: "llama-gpt4:r1", max_tokens: 96, seed: 1}}],
  opponent: {name: "one-sample", endpoint: {base_url: $s, model: "llama-gpt4", max_tokens: 96, seed: 1001}},
  judges: {rules: {from_text: true}, reward: {path: "reward/testdata/tiny-rm", runtime: "go"}},
  bootstrap: {resamples: 10000, seed: 1}}}' > "$OUT/job.json"
J=$(curl -s -d @"$OUT/job.json" $A/jobs | jq -r .id)
BESTOFN_SERVER=http://127.0.0.1:$PORT $BIN job wait "$J"
curl -s $A/jobs/$J > "$OUT/job-final.json"
for id in $(jq -r '.outputs[]' "$OUT/job-final.json"); do
  curl -s $A/files/$id/content -o "$OUT/out/$(curl -s $A/files/$id | jq -r .filename)"
done
ls "$OUT/out"
