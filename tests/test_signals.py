"""Signal pipeline: windows, STFT spectrograms, the on-disk cache, tf.data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hpolab.config import DataSection
from hpolab.data import load_dataset
from hpolab.data.signals import (
    SpectrogramCache,
    SpectrogramSpec,
    compute_spectrogram,
    make_windows,
)
from hpolab.errors import DataError


def test_windows_have_fixed_length_and_majority_or_last_labels():
    signals = np.arange(20, dtype=np.float32).reshape(10, 2)  # 10 time steps, 2 channels
    labels = np.array(["a"] * 6 + ["b"] * 4)
    X, y = make_windows(signals, labels, length=4, hop=2)
    assert X.shape == (4, 4, 2)  # starts 0, 2, 4, 6
    assert np.array_equal(X[1, :, 0], [4, 6, 8, 10])  # rows 2..5, channel 0
    assert list(y) == ["a", "a", "a", "b"]  # window 4..7 holds a, a, b, b: tie -> first
    _, last = make_windows(signals, labels, length=4, hop=2, label_rule="last")
    assert list(last) == ["a", "a", "b", "b"]
    with pytest.raises(DataError, match="data.windows.length"):
        make_windows(signals, labels, length=11)


def test_spectrogram_of_a_sine_peaks_at_its_frequency_bin():
    timesteps, frame = 128, 32
    t = np.arange(timesteps)
    # 8 cycles per 32-sample frame on channel 0, 3 on channel 1.
    X = np.stack([np.sin(2 * math.pi * 8 * t / frame), np.sin(2 * math.pi * 3 * t / frame)], -1)
    spec = SpectrogramSpec(frame_length=frame, frame_step=16, log=False)
    out = compute_spectrogram(X[None].astype(np.float32), spec)
    assert out.shape == (1, *spec.output_shape(timesteps, 2)) == (1, 7, 17, 2)
    assert out[0, :, :, 0].mean(axis=0).argmax() == 8
    assert out[0, :, :, 1].mean(axis=0).argmax() == 3
    logged = compute_spectrogram(X[None].astype(np.float32), SpectrogramSpec(frame, 16))
    assert np.allclose(logged, np.log(out + 1e-6), atol=1e-4)
    with pytest.raises(DataError, match="frame_length: 200 is longer than a window"):
        compute_spectrogram(X[None].astype(np.float32), SpectrogramSpec(200, 16))


def test_cache_computes_once_then_reads_memory_then_disk(tmp_path: Path):
    X = np.random.default_rng(0).normal(size=(20, 64, 3)).astype(np.float32)
    spec = SpectrogramSpec(16, 8)
    cache = SpectrogramCache(tmp_path)
    first = cache.get(X, spec)
    assert first.source == "computed"
    assert len(list(tmp_path.glob("spectrogram_*.npy"))) == 1
    assert cache.get(X, spec).source == "memory"
    fresh = SpectrogramCache(tmp_path).get(X, spec)  # another process / a resumed study
    assert fresh.source == "disk cache"
    assert np.array_equal(fresh.array, first.array)
    # Other settings or other data: another entry, never the old one.
    assert SpectrogramCache(tmp_path).get(X, SpectrogramSpec(32, 8)).source == "computed"
    assert SpectrogramCache(tmp_path).get(X[:10], spec).source == "computed"
    # A damaged file is recomputed and replaced, not trusted.
    (path,) = [p for p in tmp_path.glob("spectrogram_*.npy") if first.key in p.name]
    path.write_bytes(b"garbage")
    again = SpectrogramCache(tmp_path).get(X, spec)
    assert again.source == "computed" and np.array_equal(again.array, first.array)
    assert not list(tmp_path.glob(".*tmp*"))


def test_dataset_of_spectrograms_and_per_trial_variants(tmp_path: Path):
    cfg = DataSection(
        source="builtin:leak",
        options={"n_samples": 60, "timesteps": 64},
        spectrogram={"frame_length": 16, "frame_step": 8},
    )
    data = load_dataset(cfg, tmp_path)
    assert data.input_shape == (7, 9, 3)
    assert data.info["preprocessing"]["source"] == "computed"
    # Standardized per frequency bin and channel on the training split.
    assert np.allclose(data.X_train.mean(axis=(0, 1)), 0, atol=1e-4)
    assert np.allclose(data.X_train.std(axis=(0, 1)), 1, atol=1e-3)
    variant = data.for_params({"frame_length": 32, "units": 8})
    assert variant.input_shape == (5, 17, 3)
    assert variant.fingerprint == data.fingerprint
    assert np.array_equal(variant.y_test, data.y_test)  # same split
    assert data.for_params({"frame_length": 16}).info["preprocessing"]["source"] == "memory"
    assert data.for_params({"units": 8}) is data
    again = load_dataset(cfg, tmp_path)  # a new study process
    assert again.info["preprocessing"]["source"] == "disk cache"
    assert np.array_equal(again.X_train, data.X_train)
    no_cache = load_dataset(cfg.model_copy(update={"cache": False}), tmp_path / "none")
    assert not (tmp_path / "none").exists()
    assert np.array_equal(no_cache.X_train, data.X_train)


def test_csv_recording_is_windowed_and_split(tmp_path: Path):
    rng = np.random.default_rng(1)
    n = 400
    state = (np.arange(n) // 40) % 2  # alternating stretches of 40 rows
    t = np.arange(n)
    ch0 = rng.normal(size=n) + state * np.sin(2 * math.pi * t / 4)
    ch1 = rng.normal(size=n)
    lines = ["vib_a,vib_b,state"] + [
        f"{a:.4f},{b:.4f},{'leak' if s else 'ok'}" for a, b, s in zip(ch0, ch1, state, strict=True)
    ]
    path = tmp_path / "recording.csv"
    path.write_text("\n".join(lines) + "\n")
    cfg = DataSection(
        source=str(path),
        target="state",
        windows={"length": 20, "hop": 10},
        spectrogram={"frame_length": 8, "frame_step": 4},
    )
    data = load_dataset(cfg)
    assert data.classes == ["leak", "ok"]
    assert data.info["n_samples"] == 39
    assert data.input_shape == (4, 5, 2)
    assert data.feature_names == ["vib_a_stft", "vib_b_stft"]
    ds = data.tf_dataset("train", batch_size=4)
    X_batch, y_batch = next(iter(ds))
    assert tuple(X_batch.shape) == (4, 4, 5, 2) and tuple(y_batch.shape) == (4,)
    with pytest.raises(DataError, match="data.windows: the source is already windowed"):
        load_dataset(DataSection(source="builtin:leak", windows={"length": 8}))
