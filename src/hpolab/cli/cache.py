"""``hpolab cache``: list, show and clear the cached estimators' artifacts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hpolab.cli.common import add_root_option, quiet_libraries

DESCRIPTION = """\
List, inspect or delete the caches written by hpolab.estimators (Autoencoder,
ResidualRegressor, KerasEstimator): one cache is the files <prefix>_config.json,
_model.keras, _metrics.json, _grid_results.json and _scaler.json in the model directory.
A cache is 'valid' when every file exists and matches the checksums in its config;
an 'incomplete' one is retrained by the next fit().
"""

EPILOG = """\
examples:
  hpolab cache                         # every cache under models/cached/
  hpolab cache ae_v1                   # best configuration, score and every grid point
  hpolab cache ae_v1 --json            # the same, for scripts
  hpolab cache ae_v1 --clear --yes     # delete it (the next fit() searches again)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", nargs="?", help="one cache (its cache_prefix)")
    parser.add_argument(
        "--model-dir", metavar="DIR", help="cache folder (default: <root>/models/cached)"
    )
    add_root_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--clear", action="store_true", help="delete the cache PREFIX")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask before --clear")


def run(args: argparse.Namespace) -> int:
    quiet_libraries(args.verbose)
    from hpolab.errors import ConfigError
    from hpolab.estimators.artifacts import ModelArtifacts, cache_summary, find_caches
    from hpolab.layout import Layout, check_name

    model_dir = (
        Path(args.model_dir).expanduser().resolve()
        if args.model_dir
        else Layout.from_root(args.root).cached_models_dir
    )
    if args.prefix is None:
        if args.clear:
            raise ConfigError("--clear: name the cache to delete, e.g. hpolab cache ae_v1 --clear")
        summaries = [cache_summary(a) for a in find_caches(model_dir)] if model_dir.is_dir() else []
        _print_list(summaries, model_dir, as_json=args.json)
        return 0
    prefix = check_name(args.prefix, "prefix")
    known = [a.prefix for a in find_caches(model_dir)] if model_dir.is_dir() else []
    if prefix not in known:
        listing = ", ".join(known) if known else "none"
        raise ConfigError(f"prefix: no cache {prefix!r} in {model_dir}; caches there: {listing}")
    art = ModelArtifacts(model_dir, prefix)
    if args.clear:
        return _clear(art, assume_yes=args.yes)
    summary = cache_summary(art)
    if summary["status"] == "valid":
        summary["grid_results"] = json.loads(art.grid_results.read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_one(summary, model_dir)
    return 0


def _clear(art, assume_yes: bool) -> int:  # noqa: ANN001 - ModelArtifacts
    files = art.existing()
    if not assume_yes:
        if not sys.stdin.isatty():
            from hpolab.errors import ConfigError

            raise ConfigError("--clear: add --yes to delete without a prompt")
        answer = input(f"delete {len(files)} file(s) of cache {art.prefix!r}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    removed = art.remove()
    for path in removed:
        print(f"removed {path}")
    return 0


def _print_list(summaries: list[dict], model_dir: Path, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"model_dir": str(model_dir), "caches": summaries}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not summaries:
        console.print(f"no caches in {model_dir}")
        return
    table = Table(title=f"caches in {model_dir}")
    for column in ("prefix", "status", "estimator", "best", "configs", "created", "size"):
        table.add_column(column)
    for s in summaries:
        best = "-" if s.get("best_score") is None else f"{s['metric']} {s['best_score']:.5g}"
        table.add_row(
            s["prefix"],
            s["status"] if not s["problems"] else f"{s['status']}: {s['problems'][0]}",
            s.get("estimator") or "-",
            best,
            str(s.get("n_configs") or "-"),
            (s.get("created") or "-")[:16],
            f"{s['bytes'] / 1024:.0f} KiB",
        )
    console.print(table)


def _print_one(summary: dict, model_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"cache {summary['prefix']!r} in {model_dir}: {summary['status']}")
    for problem in summary["problems"]:
        console.print(f"  problem: {problem}")
    if summary["status"] != "valid":
        return
    console.print(f"estimator {summary['estimator']}, made {summary['created']}")
    console.print(f"best {summary['metric']} {summary['best_score']:.6g} with {summary['config']}")
    table = Table(title="grid points")
    for column in ("#", "configuration", summary["metric"], "epochs", "seconds", "state"):
        table.add_column(column)
    results = summary["grid_results"]
    # Only what changes between grid points is worth a column of text.
    varying = [
        key
        for key in results[0]["config"]
        if len({json.dumps(r["config"].get(key)) for r in results}) > 1
    ] or list(results[0]["config"])
    for r in results:
        value = r.get("metrics", {}).get(summary["metric"])
        table.add_row(
            str(r["index"]),
            " ".join(f"{k}={json.dumps(r['config'].get(k))}" for k in varying),
            "-" if value is None else f"{value:.6g}",
            str(r.get("epochs_run", "-")),
            str(r.get("seconds", "-")),
            r["state"],
        )
    console.print(table)
