"""``hpolab storage-proxy``: serve a study storage to many workers over gRPC."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_verbose_option

DESCRIPTION = """\
Serve a study storage through Optuna's gRPC storage proxy, so that many workers share
one database connection pool instead of opening one each (PostgreSQL allows about a
hundred connections by default). Workers then use --storage grpc://<host>:<port>.
"""

EPILOG = """\
examples:
  hpolab storage-proxy --storage postgresql://user@db:5432/hpo --port 13000
  hpolab worker --config configs/parallel.yaml --storage grpc://proxy-host:13000
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "storage-proxy",
        help="serve a study storage to many workers (Optuna gRPC proxy)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--storage", required=True, metavar="URL", help="the storage to serve (SQLAlchemy URL)"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    parser.add_argument("--port", type=int, default=13000, help="port (default 13000)")
    add_verbose_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.search.proxy import serve

    try:
        serve(args.storage, args.host, args.port)
    except KeyboardInterrupt:
        print("storage proxy stopped", flush=True)
        return 130
    return 0
