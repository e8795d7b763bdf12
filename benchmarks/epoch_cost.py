"""What a trial's fit costs per epoch and once per model: Keras's array pipeline against
hpolab's (``hpolab.training.fit.training_batches``), with and without ``build_state``.

    python benchmarks/epoch_cost.py [--rounds 3] [--threads 1]

Fits the race's model (``benchmarks/race.py``: ``builtin:digits``, two dense layers of
128 units, dropout 0.2, Adam, batch 64) for 2 and for 22 epochs in each variant,
interleaved, ``--rounds`` times, with TensorFlow limited to ``--threads`` threads (1 is
what each of two workers on 2 cores gets). Per variant, from the medians: the time per
epoch (the difference of the two fits over 20 epochs), the time once per model (the
2-epoch fit less two epochs) and the number of traces of the train step.

Variants:
- keras: ``model.fit`` on the arrays, as Keras builds its own pipeline;
- keras + build_state: the optimizer's and metrics' variables made before ``fit``;
- hpolab: build_state and hpolab's pipeline (what ``fit_arrays`` does);
- hpolab + steps_per_execution: the same, running a whole epoch (23 steps) per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from race import write_config  # noqa: E402

VARIANTS = ("keras", "keras + build_state", "hpolab", "hpolab + steps_per_execution")
STEPS_PER_EPOCH = 23  # 1437 training rows in batches of 64


def make_model(
    shape: tuple[int, ...], classes: int, seed: int, steps: int = 1
) -> tuple[Any, list[int]]:
    """The race's MLP, compiled (``steps`` per execution), with a counter of its train
    step's traces."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=shape)]
    for _ in range(2):
        layers += [keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.2)]
    model = keras.Sequential([*layers, keras.layers.Dense(classes, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps,
    )
    traces = [0]
    step = model.train_step

    def counted(data: Any) -> Any:  # runs once per trace, not per batch
        traces[0] += 1
        return step(data)

    model.train_step = counted
    return model, traces


def fit(variant: str, data: Any, epochs: int, seed: int) -> tuple[float, int]:
    """Seconds of one fit of a new model, and its train step's traces."""
    from hpolab.training.fit import build_state, training_batches

    steps = STEPS_PER_EPOCH if variant.endswith("steps_per_execution") else 1
    model, traces = make_model(data.input_shape, data.n_outputs, seed, steps)
    X, y = data.X_train, data.y_train
    start = time.perf_counter()
    if variant != "keras":
        build_state(model, X, y)
    if variant.startswith("hpolab"):
        model.fit(training_batches(X, y, 64), epochs=epochs, shuffle=False, verbose=0)
    else:
        model.fit(X, y, epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    return time.perf_counter() - start, traces[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from hpolab.config import load_config
    from hpolab.data import load_dataset
    from hpolab.training.fit import limit_threads

    limit_threads(args.threads)
    cfg = write_config(Path(tempfile.mkdtemp()) / "race.yaml", 0, 20)
    data = load_dataset(load_config(cfg).data)
    fit("keras", data, 1, 0)  # imports and TensorFlow's first-use costs, not measured
    times = {(v, e): [] for v in VARIANTS for e in (2, 22)}
    traces: dict[str, int] = {}
    for r in range(args.rounds):
        for variant in VARIANTS:
            for epochs in (2, 22):
                seconds, traces[variant] = fit(variant, data, epochs, seed=r)
                times[variant, epochs].append(seconds)
    print(f"{args.rounds} rounds, {args.threads} thread(s), medians:")
    base = None
    for variant in VARIANTS:
        short = statistics.median(times[variant, 2])
        long = statistics.median(times[variant, 22])
        per_epoch = (long - short) / 20
        once = short - 2 * per_epoch
        base = base or (per_epoch, once, long)
        print(
            f"  {variant:<29} per epoch {1000 * per_epoch:5.1f} ms ({per_epoch / base[0]:.2f}x)"
            f"  once per model {1000 * once:5.0f} ms ({once / base[1]:.2f}x)"
            f"  22-epoch fit {long:.2f} s ({long / base[2]:.2f}x)"
            f"  traces {traces[variant]}"
        )


if __name__ == "__main__":
    main()
