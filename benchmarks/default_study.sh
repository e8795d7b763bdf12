#!/usr/bin/env bash
# Wall time, peak memory and per-trial bookkeeping time of the default study
# (`python run_hpo.py` with no arguments) in a fresh temporary root.
#
#   benchmarks/default_study.sh            # prints a summary; keeps nothing
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
cd "$root"

/usr/bin/time -v -o "$root/time.txt" python "$here/run_hpo.py" --root "$root" > "$root/out.txt"

echo "== python run_hpo.py (default study), $(nproc) CPU cores"
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$root/time.txt" | sed 's/^\s*/  /'
grep -E "new trials this run" "$root/out.txt" | sed 's/^/  /'
python - "$root" <<'PY'
import json, sys
from pathlib import Path

root = Path(sys.argv[1])
for path in sorted((root / "hpo_results" / "default").glob("hpo_results_*.json")):
    r = json.loads(path.read_text())
    t = r["last_run_timing"]
    n = max(t["new_trials"], 1)
    print(
        f"  {r['model_type']:<6} trials {t['new_trials']:>2}  states {r['states']}  "
        f"best {r['metric']} {r['best_value']:.4f}  "
        f"training {t['training_seconds'] / n:.2f}s/trial  "
        f"outside training {t['bookkeeping_seconds'] / n:.2f}s/trial "
        f"({100 * t['bookkeeping_seconds'] / t['search_seconds']:.0f}% of search time)"
    )
    final = json.loads((root / "models" / "hpo_derived" / "default" /
                        f"final_model_{r['model_type']}.json").read_text())
    print(f"         final model test metrics {final['test_metrics']}  "
          f"retrain {final['retrain_seconds']}s")
PY
