#!/usr/bin/env bash
# Side by side: bestofn and llama.cpp on the same GGUF files, 2 threads (the table of issue 16 and the
# README's "Measured speed").
#
#   LLAMA_SRC=/path/to/llama.cpp scripts/llamacpp_side_by_side.sh [MODEL.gguf ...]
#
# LLAMA_SRC is a llama.cpp source tree (not part of this repository; any recent tag): it is built once in
# $LLAMA_BUILD (default /tmp/llama.cpp-build) with -march=native, llama-bench and llama-batched only. With no
# MODEL arguments, `bestofn synth` writes the 1.1B shape (dim 2048, 22 layers, 32/4 heads, ffn 5632, vocab
# 32000) in Q8_0, F16 and Q4_0 to $MODELS (default /tmp/bestofn-side). For each model it prints one
# Markdown row:
#
#   decode tok/s          bestofn bench --prompt-tokens 1 --gen-tokens 128 (and llama-bench tg128)
#   share of limit        decode tok/s x weight bytes per token / read bandwidth (bestofn bench's probe)
#   prefill 64 tok/s      bestofn bench --prompt-tokens 64 (and llama-bench pp64)
#   best-of-5 / n=1       bestofn bench --n 5 --prompt-tokens 8 --gen-tokens 48 --repeat $REPEAT (median),
#                         llama-batched -np 5 vs -np 1 on an 8-token prompt, -n 56 (48 new tokens each)
#
# Speeds drift on a shared machine: run it when the machine is quiet, or read the ratios. The CPU model and
# the kernels bestofn chose are printed first.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${LLAMA_BUILD:-/tmp/llama.cpp-build}
models_dir=${MODELS:-/tmp/bestofn-side}
threads=${THREADS:-2}
repeat=${REPEAT:-3}
bestofn=${BESTOFN:-/tmp/bestofn-side-bin}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

if [[ ! -x $build/bin/llama-bench || ! -x $build/bin/llama-batched ]]; then
	: "${LLAMA_SRC:?set LLAMA_SRC to a llama.cpp source tree}"
	cmake -S "$LLAMA_SRC" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON >/dev/null
	cmake --build "$build" -j "$(nproc)" --target llama-bench llama-batched >/dev/null
fi
(cd "$repo" && go build -o "$bestofn" ./cmd/bestofn)

models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
	mkdir -p "$models_dir"
	for t in Q8_0 F16 Q4_0; do
		f=$models_dir/$(echo "$t" | tr 'A-Z' 'a-z').gguf
		[[ -f $f ]] || "$bestofn" synth --type "$t" "$f" >&2
		models+=("$f")
	done
fi

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $threads threads"
echo
echo "| model | bestofn decode tok/s | llama.cpp tg128 | weights/bandwidth limit tok/s | bestofn share of limit | bestofn prefill 64 | llama.cpp pp64 | bestofn best-of-5 / n=1 | llama-batched 5 / 1 | kernels |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
	dec=$("$bestofn" bench --model "$m" --prompt-tokens 1 --gen-tokens 128 --threads "$threads" --json)
	pre=$("$bestofn" bench --model "$m" --prompt-tokens 64 --gen-tokens 1 --threads "$threads" --bandwidth=false --json)
	bon=$("$bestofn" bench --model "$m" --n 5 --prompt-tokens 8 --gen-tokens 48 --threads "$threads" --repeat "$repeat" --json)
	lb=$("$build/bin/llama-bench" -m "$m" -t "$threads" -p 64 -n 128 -r 3 -o json 2>/dev/null)
	tg=$(echo "$lb" | json "[r['avg_ts'] for r in d if r['n_gen'] > 0][0]")
	pp=$(echo "$lb" | json "[r['avg_ts'] for r in d if r['n_prompt'] > 0][0]")
	batched() { # seconds llama-batched takes to decode 48 new tokens in each of $1 sequences
		"$build/bin/llama-batched" -m "$m" -t "$threads" -np "$1" -n 56 -p "Once upon a time there was a" 2>&1 |
			sed -n 's/.*decoded [0-9]* tokens in \([0-9.]*\) s.*/\1/p'
	}
	b1=$(batched 1)
	b5=$(batched 5)
	printf '| %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.2f | %s |\n' "$(basename "$m")" \
		"$(echo "$dec" | json "d['decode_tok_s']")" "$tg" \
		"$(echo "$dec" | json "d['limit_tok_s']")" "$(echo "$dec" | json "d['share_of_limit']")" \
		"$(echo "$pre" | json "d['prefill_tok_s']")" "$pp" \
		"$(echo "$bon" | json "d.get('decode_ratio_median') or d['decode_ratio_vs_n1']")" \
		"$(python3 -c "print($b5 / $b1)")" "$(echo "$dec" | json "d['kernels'] + ', ' + d['layout']")"
done
echo
echo "llama.cpp build $(echo "$lb" | json "d[0]['build_number']") ($(echo "$lb" | json "d[0]['build_commit']")), $(echo "$lb" | json "d[0]['cpu_info']")"
