#!/usr/bin/env bash
# Wall time of the default study (`python run_hpo.py`, no arguments) for two checkouts of
# hpolab, interleaved A B A B ... in one run, so a noisy machine affects both alike.
#
#   benchmarks/ab_default_study.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]   # default 2 rounds
#
# Each run uses its checkout's src/ (PYTHONPATH) and a fresh temporary root. Prints each
# run's wall time, best values and per-trial time outside training, then the median ratio.
set -euo pipefail
a="$(cd "$1" && pwd)"; b="$(cd "$2" && pwd)"; rounds="${3:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_one() {  # checkout label round
  local root="$work/$2_$3"
  mkdir -p "$root"
  local start end
  start=$(date +%s.%N)
  (cd "$root" && PYTHONPATH="$1/src" python "$1/run_hpo.py" --root "$root" > "$root/out.txt" 2>&1)
  end=$(date +%s.%N)
  local secs
  secs=$(python -c "print(round($end - $start, 1))")
  echo "$2 $secs" >> "$work/times.txt"
  local line
  line=$(grep -E "new trials this run" "$root/out.txt" | sed 's/^ *//')
  echo "  $2 round $3: ${secs}s  $line"
  python - "$root" <<'PY'
import json, sys
from pathlib import Path

for path in sorted(Path(sys.argv[1], "hpo_results", "default").glob("hpo_results_*.json")):
    r = json.loads(path.read_text())
    t = r["last_run_timing"]
    print(f"      {r['model_type']:<6} best {r['best_value']:.4f} states {r['states']} "
          f"training {t['training_seconds']:.1f}s outside {t['bookkeeping_seconds']:.1f}s")
PY
}

echo "== default study, $(nproc) CPU cores, $rounds rounds (A: $a, B: $b)"
for r in $(seq 1 "$rounds"); do
  run_one "$a" A "$r"
  run_one "$b" B "$r"
done
python - "$work/times.txt" <<'PY'
import statistics, sys
times = {"A": [], "B": []}
for line in open(sys.argv[1]):
    label, secs = line.split()
    times[label].append(float(secs))
ratios = [b / a for a, b in zip(times["A"], times["B"])]
print(f"  median A {statistics.median(times['A']):.1f}s, B {statistics.median(times['B']):.1f}s; "
      f"B/A per round {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
PY
