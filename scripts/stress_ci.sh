#!/usr/bin/env bash
# Does the suite pass on a loaded machine, again and again? Clones the repository into a
# temporary directory (a clean clone: nothing from this work tree's venv or caches), keeps
# every core busy with another process, runs the README's test command there N times in a
# row as CI runs it (CI=true), and prints the tally. Exit 0 only if every run passed.
#
#   bash scripts/stress_ci.sh [-n RUNS] [-r REF] [-- PYTEST ARGS...]   (default: 5 runs of HEAD, -q)
#   bash scripts/stress_ci.sh -n 1 -- -q -m "not ray"                   (one run, Ray tests left out)
set -euo pipefail
RUNS=5
REF=HEAD
while getopts "n:r:" option; do
    case $option in
        n) RUNS=$OPTARG ;;
        r) REF=$OPTARG ;;
        *) echo "usage: $0 [-n RUNS] [-r REF] [-- PYTEST ARGS...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- -q
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vecdial-stress-XXXXXX")
BURNER=

cleanup() {
    [ -n "$BURNER" ] && kill -- -"$BURNER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

git clone --quiet --no-hardlinks "$REPO" "$WORK/clone"
git -C "$WORK/clone" checkout --quiet --detach "$REF"
echo "stress_ci: $RUNS run(s) of 'bash scripts/test.sh $*' on a clean clone of $(git -C "$WORK/clone" rev-parse --short HEAD), every core kept busy"

# One process (in its own process group, so it and its children stop together) spinning on every core.
setsid python3 -c '
import multiprocessing, os
def spin(_):
    while True:
        pass
multiprocessing.Pool(os.cpu_count()).map(spin, range(os.cpu_count()))
' &
BURNER=$!

results=()
passed_runs=0
for run in $(seq 1 "$RUNS"); do
    log="${TMPDIR:-/tmp}/vecdial-stress-run-$run.log"  # kept after the clone is removed
    started=$(date +%s)
    status=0
    (cd "$WORK/clone" && CI=true bash scripts/test.sh "$@") > "$log" 2>&1 || status=$?
    seconds=$(( $(date +%s) - started ))
    # pytest's closing line, with or without its === frame (-q drops it)
    summary=$(grep -E "^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected).* in [0-9.]+s" "$log" | tail -1 | sed -E 's/^=+ //; s/ =+$//' || true)
    [ -n "$summary" ] || summary=$(tail -1 "$log" || true)
    [ "$status" = 0 ] && passed_runs=$((passed_runs + 1))
    results+=("$(printf '%-4s %-5s %6ss  %s' "$run" "$status" "$seconds" "$summary")")
    echo "stress_ci: run $run: exit $status in ${seconds}s: $summary"
    if [ "$status" != 0 ]; then
        grep -E "^(FAILED|ERROR) " "$log" | sed 's/^/    /' || true
        echo "    full log: $log"
    fi
done

echo
echo "run  exit  time    pytest summary"
printf '%s\n' "${results[@]}"
echo "tally: $passed_runs of $RUNS runs passed"
[ "$passed_runs" = "$RUNS" ]
