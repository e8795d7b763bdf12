"""The python-function model of hpolab's final models, logged as code.

MLflow runs this file to load the model (its "models from code"), so nothing is
unpickled: see :class:`hpolab.tracking.serving.FinalModelPyfunc`.
"""

import mlflow

from hpolab.tracking.serving import FinalModelPyfunc

mlflow.models.set_model(FinalModelPyfunc())
