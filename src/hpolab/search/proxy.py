"""Optuna's gRPC storage proxy in front of a study storage (``hpolab storage-proxy``)."""

from __future__ import annotations

import warnings

import optuna

from hpolab.errors import StorageError
from hpolab.search.storage import is_sql_url, open_storage, redact

# Optuna's gRPC client sends no heartbeats: workers behind the proxy keep their trials
# alive with hpolab's lease instead (see hpolab.search.loop.Lease). This only opens the
# database as the workers would.
_HEARTBEAT_INTERVAL = 10


def serve(url: str, host: str, port: int) -> None:
    """Serve the storage at ``url`` on ``host:port`` until interrupted."""
    if not is_sql_url(url):
        raise StorageError(
            f"--storage: the proxy serves a database storage, not {redact(url)}; "
            "give a SQLAlchemy URL such as postgresql://user@host:5432/dbname"
        )
    from optuna.storages import get_storage, run_grpc_proxy_server

    # Optuna's cached wrapper: the proxy answers repeated reads without the database.
    storage = get_storage(open_storage(url, _HEARTBEAT_INTERVAL, None, max_retries=3))
    print(f"serving {redact(url)} on grpc://{host}:{port} (Ctrl-C stops)", flush=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            run_grpc_proxy_server(storage, host=host, port=port)
    except RuntimeError as exc:  # gRPC cannot bind the address
        raise StorageError(
            f"--host/--port: cannot serve on {host}:{port}: {exc}; choose a free port"
        ) from None
