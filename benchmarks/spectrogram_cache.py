"""Time spectrogram preprocessing: computed, then from the disk cache, then from memory.

    python benchmarks/spectrogram_cache.py [--n-samples 3000] [--timesteps 1024]

Each configuration runs in fresh processes, as a study and its resume would: the first
process computes the spectrograms (TensorFlow imported beforehand, so its import time is
not counted), the second finds them on disk. The in-process "memory" line is what a later
trial of the same study pays.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
from pathlib import Path
import tensorflow  # imported first: every study imports it anyway for training
from hpolab.config import DataSection
from hpolab.data import load_dataset
n, timesteps, cache = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
cfg = DataSection(source="builtin:leak", options={"n_samples": n, "timesteps": timesteps},
                  spectrogram={"frame_length": 64, "frame_step": 16})
start = time.perf_counter()
data = load_dataset(cfg, cache)
total = time.perf_counter() - start
first = dict(data.info["preprocessing"])
later = data.for_params({"frame_length": 64})  # a later trial, same settings
print(json.dumps({"source": first["source"], "seconds": first["seconds"],
                  "load_total": round(total, 3), "shape": list(data.input_shape),
                  "later_trial": later.info["preprocessing"]["source"],
                  "later_seconds": later.info["preprocessing"]["seconds"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=3000)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[128, 1024])
    args = parser.parse_args()
    for timesteps in args.timesteps:
        with tempfile.TemporaryDirectory() as cache:
            runs = []
            for _ in range(2):
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(args.n_samples), str(timesteps), cache],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                runs.append(
                    {
                        **json.loads(out.strip().splitlines()[-1]),
                        "process": round(time.perf_counter() - start, 1),
                    }
                )
        computed, cached = runs
        ratio = cached["seconds"] / computed["seconds"]
        print(
            f"{args.n_samples} windows x {timesteps} samples -> {computed['shape']}: "
            f"first process {computed['source']} {computed['seconds']:.3f} s, "
            f"second process {cached['source']} {cached['seconds']:.3f} s "
            f"(ratio {ratio:.3f}); a later trial: {computed['later_trial']} "
            f"{computed['later_seconds']:.4f} s"
        )


if __name__ == "__main__":
    main()
