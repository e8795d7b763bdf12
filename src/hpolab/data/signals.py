"""Signal pipeline: fixed-length windows, STFT spectrograms, on-disk cache, ``tf.data``.

Multichannel sensor recordings (rows = time samples, columns = channels) are cut into
windows ``(n, length, channels)``; a spectrogram turns each window into
``(frames, bins, channels)`` log-magnitudes computed with ``tf.signal.stft``. Spectrograms
are the expensive step, so they are cached on disk under a key made of the windows' bytes
and the STFT settings: a study of 100 trials (or its resume, or a second worker) computes
them once.

TensorFlow is imported only when a spectrogram is computed or a ``tf.data`` pipeline is
made, never to load a cached array.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpolab.data.fingerprint import fingerprint_arrays
from hpolab.errors import DataError
from hpolab.layout import atomic_path

# Bumped when the spectrogram computation changes, so old cache entries are not reused.
PIPELINE_VERSION = 1
LOG_FLOOR = 1e-6


@dataclass(frozen=True)
class SpectrogramSpec:
    """STFT settings: frame length and step in samples, FFT size, log-magnitude or not."""

    frame_length: int = 32
    frame_step: int = 8
    fft_length: int | None = None
    log: bool = True

    def output_shape(self, timesteps: int, channels: int) -> tuple[int, int, int]:
        """``(frames, bins, channels)`` of one window of ``timesteps`` samples."""
        fft = self.fft_length or _next_power_of_two(self.frame_length)
        frames = 1 + (timesteps - self.frame_length) // self.frame_step
        return frames, fft // 2 + 1, channels

    def check(self, timesteps: int) -> None:
        """Refuse settings that give no frame or an FFT shorter than a frame."""
        if self.frame_length > timesteps:
            raise DataError(
                f"data.spectrogram.frame_length: {self.frame_length} is longer than a window "
                f"({timesteps} samples); use at most {timesteps}"
            )
        if self.fft_length is not None and self.fft_length < self.frame_length:
            raise DataError(
                f"data.spectrogram.fft_length: {self.fft_length} is shorter than frame_length "
                f"{self.frame_length}; leave it empty (next power of two) or raise it"
            )


def _next_power_of_two(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def make_windows(
    signals: np.ndarray,
    labels: np.ndarray,
    length: int,
    hop: int | None = None,
    label_rule: str = "majority",
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``signals`` ``(time, channels)`` into windows ``(n, length, channels)``.

    Each window's label is the most frequent label of its samples (``majority``) or the
    label of its last sample (``last``). The tail shorter than a window is dropped.
    """
    signals = np.asarray(signals, dtype=np.float32)
    if signals.ndim == 1:
        signals = signals[:, None]
    hop = hop or length
    if length < 2 or hop < 1:
        raise DataError("data.windows: length must be at least 2 and hop at least 1")
    if len(signals) < length:
        raise DataError(
            f"data.windows.length: {length} samples per window but the recording has only "
            f"{len(signals)} rows; use a shorter window"
        )
    starts = np.arange(0, len(signals) - length + 1, hop)
    index = starts[:, None] + np.arange(length)[None, :]
    X = signals[index]
    window_labels = np.asarray(labels)[index]
    if label_rule == "last":
        y = window_labels[:, -1]
    elif label_rule == "majority":
        y = np.array([_most_frequent(row) for row in window_labels])
    else:
        raise DataError(f"data.windows.label: unknown rule {label_rule!r}; use majority or last")
    return X, y


def _most_frequent(values: np.ndarray) -> Any:
    uniques, counts = np.unique(values, return_counts=True)
    return uniques[int(np.argmax(counts))]


def compute_spectrogram(X: np.ndarray, spec: SpectrogramSpec) -> np.ndarray:
    """Log-magnitude STFT of windows ``(n, time, channels)`` -> ``(n, frames, bins, channels)``."""
    import tensorflow as tf

    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(
            f"data.spectrogram: needs windows of shape (n, time, channels); got {X.shape}"
        )
    spec.check(X.shape[1])
    signals = tf.transpose(tf.constant(X), perm=[0, 2, 1])  # stft runs over the last axis
    stft = tf.signal.stft(
        signals,
        frame_length=spec.frame_length,
        frame_step=spec.frame_step,
        fft_length=spec.fft_length,
        window_fn=tf.signal.hann_window,
    )
    magnitude = tf.abs(stft)
    if spec.log:
        magnitude = tf.math.log(magnitude + LOG_FLOOR)
    return np.ascontiguousarray(tf.transpose(magnitude, perm=[0, 2, 3, 1]).numpy())


@dataclass
class Preprocessed:
    """A preprocessed array and how it was obtained (for the timing the study reports)."""

    array: np.ndarray
    source: str  # "computed", "disk cache" or "memory"
    seconds: float
    key: str


class SpectrogramCache:
    """Spectrograms in memory and on disk, keyed by the input windows and the settings.

    ``cache_dir=None`` keeps them in memory only. Files are written atomically, so a
    worker killed mid-write leaves no half file for the next one to read.
    """

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self._memory: dict[str, np.ndarray] = {}

    def key(self, X: np.ndarray, spec: SpectrogramSpec, x_digest: str | None = None) -> str:
        settings = json.dumps({**asdict(spec), "version": PIPELINE_VERSION}, sort_keys=True)
        digest = hashlib.sha256((x_digest or fingerprint_arrays(X, length=64)).encode())
        digest.update(settings.encode())
        return digest.hexdigest()[:24]

    def get(
        self, X: np.ndarray, spec: SpectrogramSpec, x_digest: str | None = None
    ) -> Preprocessed:
        """The spectrogram of ``X``: from memory, from disk, or computed (and stored)."""
        start = time.perf_counter()
        key = self.key(X, spec, x_digest)
        if key in self._memory:
            return Preprocessed(self._memory[key], "memory", time.perf_counter() - start, key)
        path = self._path(key)
        array = self._read(path) if path is not None else None
        source = "disk cache"
        if array is None:
            array = compute_spectrogram(X, spec)
            source = "computed"
            if path is not None:
                self._write(path, array)
        self._memory[key] = array
        return Preprocessed(array, source, time.perf_counter() - start, key)

    def _path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"spectrogram_{key}.npy"

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # damaged entry: recompute and overwrite

    @staticmethod
    def _write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, array, allow_pickle=False)


def make_tf_dataset(
    X: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = 0,
) -> Any:
    """A batched, prefetched ``tf.data.Dataset`` of ``(X, y)`` (or ``X`` alone)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(X if y is None else (X, y))
    if shuffle:
        ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
