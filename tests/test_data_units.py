"""Data sources, label encoding, task inference and fingerprints (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import write_csv

from hpolab.config import DataSection
from hpolab.data import load_dataset
from hpolab.data.sources import make_leak_dataset
from hpolab.errors import DataError


def test_leak_dataset_is_deterministic_multichannel() -> None:
    X1, y1, names, task = make_leak_dataset(n_samples=50, seed=3)
    X2, y2, _, _ = make_leak_dataset(n_samples=50, seed=3)
    assert X1.shape == (50, 128, 3) and names == ["ch0", "ch1", "ch2"] and task == "classification"
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert set(y1) == {"leak", "no_leak"}


def test_csv_string_labels_are_encoded_and_fingerprinted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", labels=("ok", "broken"))
    data = load_dataset(DataSection(source=str(path), target="label"))
    assert data.classes == ["broken", "ok"] and data.task == "classification"
    assert data.input_shape == (4,) and data.feature_names == ["f1", "f2", "f3", "f4"]
    again = load_dataset(DataSection(source=str(path), target="label"))
    assert again.fingerprint == data.fingerprint
    other = load_dataset(
        DataSection(source=str(write_csv(tmp_path / "e.csv", seed=9)), target="label")
    )
    assert other.fingerprint != data.fingerprint


def test_npz_and_regression_inference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=X[:, 0] * 2.5 + 0.1)
    data = load_dataset(DataSection(source=str(path)))
    assert data.task == "regression" and data.target_scaler is not None and data.classes is None


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("", "label", "is empty"),
        ("a,label\n", "label", "no data rows"),
        ("a,b\n" + "1,2\n" * 20, "label", "column 'label' not found"),
        ("a,label\n" + "x,1\n" * 20, "label", "column 'a'"),
        ("a,label\n" + "1,same\n" * 20, "label", "only one class"),
        ("a,label\n" + "1,\n" * 20, "label", "empty values"),
    ],
)
def test_bad_csv_files(tmp_path: Path, content: str, target: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(DataSection(source=str(path), target=target))


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(DataError, match="builtin:digits"):
        load_dataset(DataSection(source="builtin:mnist"))


def test_fingerprints_stay_those_stored_by_earlier_versions() -> None:
    """Stored studies and estimator caches compare these digests: they must not drift."""
    import hashlib

    from hpolab.config import load_config
    from hpolab.data.fingerprint import fingerprint_arrays

    # The default study's data (a stored study refuses to resume on another fingerprint);
    # since the default study reads spectrograms of 2000 windows.
    assert load_dataset(load_config(None).data, None).fingerprint == "cac0a9ddedfd02d4"
    # Cached estimators: settings first, then each array's shape, dtype and bytes.
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    digest = hashlib.sha256(b"classification")
    for part in (str(X.shape), str(X.dtype)):
        digest.update(part.encode())
    digest.update(X.tobytes())
    digest.update(b"none")
    expected = digest.hexdigest()[:16]
    assert fingerprint_arrays(X, None, prefix="classification") == expected
