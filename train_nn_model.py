"""Train one model with a known configuration; see ``python train_nn_model.py --help``."""

from hpolab.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
