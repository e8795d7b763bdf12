"""Results files and summaries, parameter importance, plots and reports."""

from hpolab.reporting.results import param_importance, write_combined_results, write_results
from hpolab.reporting.summary import ModelTypeSummary, study_markdown

__all__ = [
    "ModelTypeSummary",
    "param_importance",
    "study_markdown",
    "write_combined_results",
    "write_results",
]
