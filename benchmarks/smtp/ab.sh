#!/bin/bash
# A/B of two twisted-mail-stack set-ups under the same load at the same time: both servers run
# at once (A on 127.0.0.1:2530, B on 2532) and smtp-source alternates between them, so that the
# machine's drift (other work, the host, the file system) hits both alike. Prints each run's
# msg/s, the medians, each server's CPU per message and the B/A ratio of each pair.
#   ab.sh "A's environment" "B's environment" [pairs]      env: COUNT (3000), CONC (16), BENCH
#   ab.sh "VENV=/tmp/venv-main" "VENV=/tmp/venv-branch" 5  # two checkouts, each in its venv
#   ab.sh "STORE=memory" "" 5                              # the protocol alone vs with Maildir
# Its data directories stay under /tmp/bench-ab until removed by hand: deleting many files just
# before a run slows file creation on ext4 without a journal (recently freed inodes are skipped).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd); LOAD=${BENCH:-/work/shared/bench}/load
COUNT=${COUNT:-3000}; CONC=${CONC:-16}; PAIRS=${3:-5}
mkdir -p /tmp/bench-ab
DA=/tmp/bench-ab/a$(date +%s%N); DB=/tmp/bench-ab/b$(date +%s%N)
env $1 DIR="$DA" PORT=2530 "$HERE/mailstack.sh" start
env $2 DIR="$DB" PORT=2532 "$HERE/mailstack.sh" start
trap 'DIR="$DA" "$HERE/mailstack.sh" stop; DIR="$DB" "$HERE/mailstack.sh" stop' EXIT
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$1/twistd.pid")/stat"; }
run() {
  (cd "$LOAD" && python3 smtp_source.py --port "$1" --count "$COUNT" --size 4096 --conc "$CONC" --json) |
    tail -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["msgs_per_s"])'
}
run 2530 >/dev/null; run 2532 >/dev/null  # warm up
ca=$(cpu "$DA"); cb=$(cpu "$DB"); ra=""; rb=""
for _ in $(seq "$PAIRS"); do ra="$ra $(run 2530)"; rb="$rb $(run 2532)"; done
python3 - "$ra" "$rb" $(( $(cpu "$DA") - ca )) $(( $(cpu "$DB") - cb )) $((PAIRS * COUNT)) "$1" "$2" <<'PY'
import statistics, sys
a, b = ([float(x) for x in arg.split()] for arg in sys.argv[1:3])
ticks = 100  # /proc/<pid>/stat counts CPU in clock ticks
n = int(sys.argv[5])
for name, rates, used, label in (("A", a, sys.argv[3], sys.argv[6]), ("B", b, sys.argv[4], sys.argv[7])):
    print(f"{name} [{label}]: {rates} msg/s, median {statistics.median(rates):.0f}, "
          f"server CPU {int(used) * 1000 / ticks / n:.3f} ms/msg")
print("B/A per pair:", [round(y / x, 2) for x, y in zip(a, b)])
PY
