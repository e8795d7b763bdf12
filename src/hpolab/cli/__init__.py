"""Command-line interface: one module per subcommand over the Python API."""
