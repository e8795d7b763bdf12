"""hpolab: hyperparameter optimization of Keras models with Optuna and MLflow.

Quick start::

    import hpolab
    result = hpolab.run_study("configs/leak_mlp.yaml", n_trials=10)
    final = hpolab.load_final_model(result.study, "mlp")
    final.predict(X_raw)
"""

from hpolab.api import FinalModel, load_final_model, run_study
from hpolab.config import StudyConfig, load_config
from hpolab.errors import HpolabError
from hpolab.version import __version__

__all__ = [
    "FinalModel",
    "HpolabError",
    "StudyConfig",
    "__version__",
    "load_config",
    "load_final_model",
    "run_study",
]
