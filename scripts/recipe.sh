#!/usr/bin/env bash
# The recipe that makes bestofn's default models (package recipe; README "Default models and the recipe"):
# teacher data -> sft -> feedback -> train-reward -> evaluate, through a fresh admin server's jobs and bestofn
# servers on loopback ports, offline, deterministic for the seed. Writes defaults/generator.gguf,
# defaults/reward-model/, defaults/eval/, defaults/recipe.json and defaults/MODEL_CARD.md.
#
#   scripts/recipe.sh [default|smoke|tiny] [extra bestofn recipe flags...]
#
# Run from the repository root, with ../shared beside it (the base model, HH-RLHF and the LLaMA-2 vocabulary).
set -euo pipefail
size="${1:-default}"
shift || true
shared="${SHARED:-../shared}"
out="${OUT:-defaults}"
work="${WORK:-$(mktemp -d /tmp/bestofn-recipe-XXXXXX)}"
bin="$work/bestofn"
mkdir -p "$work"
# ONNX Runtime for the reward model's checks and ranking when installed (as .ci/run installs it); else pure Go.
if [ -z "${BESTOFN_ORT_LIB:-}" ] && [ -f ".cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ]; then
  export BESTOFN_ORT_LIB="$PWD/.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"
fi
go build -o "$bin" ./cmd/bestofn
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- ':!defaults' 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
cmd="scripts/recipe.sh $size $*"
"$bin" recipe --out "$out" --work "$work" \
  --base "$shared/models/stories260K/stories260K.gguf" \
  --hh "$shared/data/hh_rlhf_harmless_base_test.jsonl.gz" \
  --rm-tokenizer "$shared/tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf" \
  --extra-pairs trainjobs/testdata/harm_pairs.jsonl \
  --clear-cut trainjobs/testdata/clear_cut_pairs.jsonl \
  --card-command "$cmd" --card-commit "$commit" \
  "$@" "$size"
