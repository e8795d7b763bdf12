"""Launch or resume a hyperparameter study; see ``python run_hpo.py --help``."""

from hpolab.cli.run import main

if __name__ == "__main__":
    raise SystemExit(main())
