#!/bin/bash
# A trainer that follows bestofn's external trainer contract (trainjobs.External): it reads the dataset
# ($BESTOFN_DATA), prints progress lines, and "trains" by copying a prepared model ($1: a reward model
# directory, or a GGUF file) into $BESTOFN_OUTPUT_DIR. $2 picks a behavior for the tests:
#   ok      three progress steps, then the model
#   fail    exits 3 with a message on stderr
#   slow    progress, then waits (cancellation: stops on SIGTERM)
#   stubborn  ignores SIGTERM (cancellation: SIGKILL after the grace period)
set -eu
model="$1"
mode="${2:-ok}"
rows=$(wc -l < "$BESTOFN_DATA")
echo "external trainer: job $BESTOFN_JOB_ID ($BESTOFN_JOB_TYPE), $rows rows, $BESTOFN_THREADS threads"
test -d "$BESTOFN_OUTPUT_DIR" && test -f "$BESTOFN_PARAMS"
for i in 1 2 3; do
	echo "{\"progress\": {\"done\": $i, \"total\": 3, \"unit\": \"epochs\"}, \"metrics\": {\"loss\": 0.$((7 - i)), \"rows\": $rows}}"
done
echo '{"event": "epochs done"}'
case "$mode" in
fail)
	echo "training diverged" >&2
	exit 3
	;;
slow)
	trap 'echo "stopping on SIGTERM" >&2; exit 143' TERM
	echo started > "$BESTOFN_WORK_DIR/started"
	while true; do sleep 0.1; done
	;;
stubborn)
	trap '' TERM
	echo started > "$BESTOFN_WORK_DIR/started"
	while true; do sleep 0.1; done
	;;
esac
if [ -d "$model" ]; then
	cp -r "$model"/. "$BESTOFN_OUTPUT_DIR"/
else
	cp "$model" "$BESTOFN_OUTPUT_DIR/model.gguf"
fi
echo "{\"result\": {\"trained_rows\": $rows}}"
