"""Built-in configurations shipped with the package."""
