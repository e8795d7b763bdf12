"""Results files, parameter importance and (later) plots and reports."""

from hpolab.reporting.results import param_importance, write_combined_results, write_results

__all__ = ["param_importance", "write_combined_results", "write_results"]
