"""The deploy examples (deploy/): valid YAML, the shape Docker Compose and Kubernetes expect,
and only ``hpolab`` subcommands and options that exist. No Docker, cluster or network."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from hpolab.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
JOB = K8S / "worker-job.yaml"
PROXY = K8S / "storage-proxy.yaml"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))

# $(NAME) (Kubernetes) and ${NAME}, ${NAME:-default}, ${NAME-default} (Compose).
PLACEHOLDER = re.compile(r"\$\((\w+)\)|\$\{(\w+)(?::?-([^}]*))?\}")
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _compose() -> dict:
    (doc,) = _documents(COMPOSE)
    return doc


def _manifests(kind: str) -> list[dict]:
    return [
        doc
        for path in sorted(K8S.glob("*.y*ml"))
        for doc in _documents(path)
        if doc.get("kind") == kind
    ]


def _only(path: Path, kind: str) -> dict:
    found = [doc for doc in _documents(path) if doc.get("kind") == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = (line.strip() for line in text.splitlines())
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(p[0].upper(), p[1] if len(p) > 1 else "") for p in pairs]


def _image_entrypoint() -> list[str]:
    (entry,) = [args for op, args in _dockerfile() if op == "ENTRYPOINT"]
    return json.loads(entry)


def _words(value: str | list | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _compose_argv(name: str) -> list[str]:
    """The full command line of a Compose service: its entrypoint (or the image's) + command."""
    service = _compose()["services"][name]
    entry = _words(service["entrypoint"]) if "entrypoint" in service else _image_entrypoint()
    return entry + _words(service.get("command"))


def _container(manifest: dict) -> dict:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return container


def _container_argv(container: dict) -> list[str]:
    entry = _words(container["command"]) if "command" in container else _image_entrypoint()
    return entry + _words(container.get("args"))


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _fill(arg: str) -> str:
    """Placeholders replaced by their Compose default, else a dummy that parses as a number."""
    return PLACEHOLDER.sub(lambda m: m.group(3) if m.group(3) is not None else "0", arg)


def _env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


# Every hpolab command line in the deploy files (read in the test, so that a broken file
# fails its own tests rather than the collection of the module).
HPOLAB_COMMANDS: dict[str, Callable[[], list[str]]] = {
    "compose-worker": lambda: _compose_argv("worker"),
    "kubernetes-worker": lambda: _container_argv(_container(_only(JOB, "Job"))),
    "kubernetes-storage-proxy": lambda: _container_argv(_container(_only(PROXY, "Deployment"))),
}


def test_deploy_files_exist():
    for name in ("Dockerfile", "docker-compose.yml", "README.md"):
        assert (DEPLOY / name).is_file(), name
    assert JOB.is_file() and PROXY.is_file()
    assert len(YAML_FILES) >= 3


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path):
    docs = _documents(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs)


def test_dockerfile_installs_the_project_with_hpolab_as_entrypoint():
    instructions = _dockerfile()
    froms = [args for op, args in instructions if op == "FROM"]
    assert froms and froms[0].split()[0] == "python:3.11-slim"
    assert ("WORKDIR", "/work") in instructions
    assert any(op == "COPY" and args.split()[0] == "." for op, args in instructions)
    installs = [shlex.split(args) for op, args in instructions if op == "RUN"]
    assert any("pip" in words and "install" in words and "." in words for words in installs), (
        "no RUN pip install ."
    )
    assert _image_entrypoint() == ["hpolab"]
    # The entrypoint is the console script the package installs.
    (script,) = entry_points(group="console_scripts", name="hpolab")
    assert script.value == "hpolab.cli.main:main"


def test_compose_postgres_and_mlflow():
    services = _compose()["services"]
    assert {"postgres", "mlflow", "worker"} <= set(services)
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_DB"] == "hpo"
    init = [v for v in postgres["volumes"] if ":/docker-entrypoint-initdb.d" in v]
    assert len(init) == 1
    init_dir = COMPOSE.parent / init[0].split(":")[0]
    sql = " ".join(p.read_text() for p in init_dir.glob("*.sql"))
    assert re.search(r"CREATE DATABASE\s+mlflow\b", sql, re.IGNORECASE)

    argv = _compose_argv("mlflow")
    assert argv[:2] == ["mlflow", "server"]
    backend = urlsplit(_fill(_option(argv, "--backend-store-uri") or ""))
    assert backend.scheme == "postgresql+psycopg"
    assert (backend.hostname, backend.path) == ("postgres", "/mlflow")
    assert "--serve-artifacts" in argv
    assert _option(argv, "--artifacts-destination")
    assert _option(argv, "--host") == "0.0.0.0"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_worker_replicas_share_postgres_and_mlflow():
    compose = _compose()
    services = compose["services"]
    worker = services["worker"]
    argv = _compose_argv("worker")
    assert argv[:2] == ["hpolab", "worker"]
    assert worker["deploy"]["replicas"] >= 2

    storage = urlsplit(_fill(_option(argv, "--storage") or ""))
    assert storage.scheme == "postgresql+psycopg"
    assert storage.hostname == "postgres"
    assert storage.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]

    tracking = urlsplit(_option(argv, "--tracking-uri") or "")
    assert (tracking.scheme, tracking.hostname) == ("http", "mlflow")
    mlflow = _compose_argv("mlflow")
    assert str(tracking.port) == _option(mlflow, "--port")
    # MLflow answers 403 to a Host header it does not allow.
    assert tracking.netloc in (_option(mlflow, "--allowed-hosts") or "").split(",")

    conditions = {name: dep["condition"] for name, dep in worker["depends_on"].items()}
    assert conditions["postgres"] == "service_healthy"
    assert conditions["mlflow"] in ("service_started", "service_healthy")
    if conditions["mlflow"] == "service_healthy":
        assert services["mlflow"]["healthcheck"]["test"]

    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    named = {v for v in named if not v.startswith((".", "/"))}
    assert named <= set(compose.get("volumes") or {}), "named volumes must be declared"


def test_kubernetes_indexed_job_passes_its_index():
    job = _only(JOB, "Job")
    assert job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] >= 2
    assert spec["completions"] >= spec["parallelism"]
    assert isinstance(spec["backoffLimit"], int)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"

    container = _container(job)
    argv = _container_argv(container)
    assert argv[:2] == ["hpolab", "worker"]
    env = _env(container)
    # Kubernetes expands $(NAME) in args only for variables declared in the container's env.
    referenced = {m.group(1) for arg in argv for m in PLACEHOLDER.finditer(arg) if m.group(1)}
    assert referenced <= set(env), f"undeclared: {referenced - set(env)}"
    index = re.fullmatch(r"\$\((\w+)\)", _option(argv, "--worker-index") or "")
    assert index, "--worker-index must be a $(VAR) reference"
    field = env[index.group(1)]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == INDEX_ANNOTATION
    assert _option(argv, "--storage") and _option(argv, "--tracking-uri")

    for var in ("HPOLAB_STORAGE", "MLFLOW_TRACKING_URI"):
        assert var in env
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert str(resources[kind]["cpu"]) == "1"
        assert resources[kind]["memory"] == "2Gi"


def test_kubernetes_env_refers_to_defined_secrets_and_config_maps():
    defined = {
        (doc["kind"], doc["metadata"]["name"]): set(doc.get("stringData", {}) | doc.get("data", {}))
        for doc in _manifests("Secret") + _manifests("ConfigMap")
    }
    containers = [_container(_only(JOB, "Job")), _container(_only(PROXY, "Deployment"))]
    refs = 0
    for container in containers:
        for item in container.get("env", []):
            source = item.get("valueFrom", {})
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if key in source:
                    ref = source[key]
                    assert ref["key"] in defined.get((kind, ref["name"]), set()), ref
                    refs += 1
    assert refs >= 3


def test_kubernetes_storage_proxy_deployment_and_service():
    deployment = _only(PROXY, "Deployment")
    service = _only(PROXY, "Service")
    assert deployment["apiVersion"] == "apps/v1"
    container = _container(deployment)
    argv = _container_argv(container)
    assert argv[:2] == ["hpolab", "storage-proxy"]
    assert _option(argv, "--port") == "13000"
    assert _option(argv, "--host") == "0.0.0.0"
    assert 13000 in [p["containerPort"] for p in container["ports"]]
    assert 13000 in [p["port"] for p in service["spec"]["ports"]]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The address the workers are told to use is this Service's.
    assert f"grpc://{service['metadata']['name']}:13000" in PROXY.read_text()


@pytest.mark.parametrize("name", sorted(HPOLAB_COMMANDS))
def test_hpolab_commands_in_deploy_files_parse(name: str, capsys):
    argv = HPOLAB_COMMANDS[name]()
    assert argv[0] == "hpolab", name
    args = [_fill(a) for a in argv[1:]]
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"{name}: hpolab {' '.join(args)}: {capsys.readouterr().err.strip()}")
    assert parsed.command == argv[1]
    config = getattr(parsed, "config", None)
    if config is not None:
        # The image's working directory is the repository copied into /work.
        assert (REPO / config).is_file(), config
