"""The one dataset fingerprint: a digest of arrays' shapes, dtypes and bytes.

Studies store it to refuse resuming on other data, the spectrogram cache keys its files
with it, and cached estimators compare it before loading.
"""

from __future__ import annotations

import hashlib

import numpy as np


def fingerprint_arrays(
    *arrays: np.ndarray | None, extra: str = "", prefix: str = "", length: int = 16
) -> str:
    """Hex digest (first ``length`` characters) of ``prefix``, ``arrays`` and then ``extra``.

    ``None`` counts as an absent array, so ``(X, None)`` and ``(X,)`` differ from ``(X, y)``.
    (Studies put their settings in ``extra``, cached estimators theirs in ``prefix``: the
    digests stored by earlier versions stay valid.)
    """
    digest = hashlib.sha256(prefix.encode())
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        contiguous = np.ascontiguousarray(array)
        digest.update(str(contiguous.shape).encode())
        digest.update(str(contiguous.dtype).encode())
        digest.update(contiguous.tobytes())
    digest.update(extra.encode())
    return digest.hexdigest()[:length]
