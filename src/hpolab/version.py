"""hpolab's version, in a module of its own so nothing needs to import the package root."""

__version__ = "0.1.0"
