#!/usr/bin/env bash
# Peak memory of a study with 5 vs 25 trials: with Keras state cleared between trials the
# peak should barely move with the number of trials.
#
#   benchmarks/memory_growth.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
for n in 5 25; do
  root="$(mktemp -d)"
  /usr/bin/time -v -o "$root/time.txt" python "$here/run_hpo.py" --root "$root" -q \
    --study-name mem --models mlp --data builtin:digits --n-trials "$n" --epochs 3 \
    --pruner none --no-mlflow
  rss=$(grep "Maximum resident set size" "$root/time.txt" | awk '{print $NF}')
  echo "trials=$n  max RSS ${rss} kB"
  rm -rf "$root"
done
