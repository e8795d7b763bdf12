"""Data loading, splitting, scaling and fingerprinting."""

from hpolab.data.dataset import Dataset, Scaler, load_dataset
from hpolab.data.sources import BUILTIN_DATASETS

__all__ = ["BUILTIN_DATASETS", "Dataset", "Scaler", "load_dataset"]
