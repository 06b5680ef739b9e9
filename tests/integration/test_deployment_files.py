"""The container deployment files: Dockerfile, .dockerignore and compose.yaml.

No Docker engine runs here, so these checks are static and fast (no network, no processes):

- compose.yaml is validated against the official Compose Specification JSON schema, the file
  ``schema/compose-spec.json`` of https://github.com/compose-spec/compose-spec (Apache-2.0).
  The copy used is the one the ``check-jsonschema`` package ships (a dev extra) as its builtin
  ``vendor.compose-spec`` schema: check-jsonschema vendors that file from compose-spec's master
  branch at each release (0.39.0: JSON Schema draft 2020-12, sha256 d549057e...). It is read
  from the installed package, so the test works offline and no copy lives in this repository.
- every command a container runs (the Dockerfile's CMD, each service's ``command``) is parsed
  by our own CLI parser, so a renamed or missing subcommand fails here, not at deploy time;
- the topology rules of the scaled deployment (one image, built here and never pulled, on
  MariaDB like the tests, health-gated dependencies, a one-shot schema step, a shared
  signing key, sandbox cards off unless asked for, /metrics kept off the public proxy, no
  privileged container) and the image rules
  (slim base, dependencies layered before code, non-root user, no dev extras, a health check).
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

from shopledger.cli import _parser
from shopledger.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

IMAGE = "shopledger:latest"
#: service -> the CLI words its container runs (after the image's ENTRYPOINT ["shopledger"]).
OUR_SERVICES = {
    "migrate": ["projections", "status"],
    "api": ["serve", "--host", "0.0.0.0", "--port", "8000"],
    "projections": ["projections", "run"],
    "worker": ["worker"],
}
LONG_RUNNING = ("api", "projections", "worker")


# --- helpers -----------------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _compose_schema() -> dict[str, Any]:
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def _schema_errors(document: object) -> list[str]:
    schema = _compose_schema()
    validator_cls = validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)  # type: ignore[arg-type]
    )


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (enough for our file)."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        raise AssertionError(f"${{{name}}} is required by compose.yaml: {arg}")

    return _INTERPOLATION.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued instruction"
    return instructions


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def _parse_cli(words: list[str], where: str) -> Any:
    try:
        return _parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"{where}: `shopledger {shlex.join(words)}` is not a command of our CLI")


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


# --- compose.yaml --------------------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    document = _compose()
    assert "version" not in document, "the Compose specification has no `version:` key"
    assert _schema_errors(document) == []


def test_the_schema_check_is_not_vacuous() -> None:
    # The same document with mistakes the specification forbids must be refused.
    document = _compose()
    document["services"]["api"]["privileged_mode"] = True
    document["services"]["mariadb"]["depends_on"] = {"redis": {"condition": "service_ready"}}
    document["services"]["worker"]["pull_policy"] = "sometimes"
    document["volumes"]["mariadb-data"] = {"drivr": "local"}
    errors = "\n".join(_schema_errors(document))
    assert "services/api" in errors
    assert "services/mariadb" in errors
    assert "services/worker" in errors
    assert "volumes/mariadb-data" in errors


def test_every_container_command_is_a_command_of_our_cli() -> None:
    services = _services()
    for name, words in OUR_SERVICES.items():
        assert services[name]["command"] == words, name
        if name != "worker":  # its own test below
            _parse_cli(services[name]["command"], f"compose service {name!r}")
    api = _parse_cli(services["api"]["command"], "api")
    assert (api.command, api.host, api.port) == ("serve", "0.0.0.0", 8000)
    projections = _parse_cli(services["projections"]["command"], "projections")
    assert (projections.command, projections.action) == ("projections", "run")
    assert projections.names == [], "every projection"


def test_the_worker_service_runs_the_worker_subcommand() -> None:
    # `shopledger worker` (RQ worker with scheduler) is API.md's process for jobs and timed rules.
    args = _parse_cli(_services()["worker"]["command"], "compose service 'worker'")
    assert args.command == "worker"


def test_one_image_built_here_and_never_pulled_serves_every_process_of_ours() -> None:
    services = _services()
    ours = {
        name
        for name, service in services.items()
        if str(service.get("image", "")).startswith("shopledger")
    }
    assert ours == set(OUR_SERVICES)
    assert {services[name]["image"] for name in ours} == {IMAGE}
    built = {name for name, service in services.items() if "build" in service}
    assert built == ours, "every service running our image builds it from this directory"
    for name in built:
        assert services[name]["build"] == ".", name
        # A locally built image is never pulled: `shopledger:latest` in a public registry
        # would be someone else's image.
        assert services[name]["pull_policy"] == "build", name
    for name, service in services.items():
        if name not in built:  # third-party images: pulled as published, never built here
            assert service.get("pull_policy") != "build", name
            assert ":" in service["image"], f"{name} pins an image tag"


def test_mariadb_like_the_tests_and_redis_7_with_health_checks_and_named_volumes() -> None:
    document = _compose()
    mariadb, redis = document["services"]["mariadb"], document["services"]["redis"]
    assert "mysql" not in document["services"]
    # The server the suite runs against (tests/conftest.py: MariaDB, 10.11 here).
    assert mariadb["image"] == "mariadb:10.11"
    test = mariadb["healthcheck"]["test"]
    assert test[:2] == ["CMD", "healthcheck.sh"] and "--connect" in test, test
    assert "--character-set-server=utf8mb4" in mariadb["command"]
    assert any(option.startswith("--collation-server=utf8mb4_") for option in mariadb["command"])
    env = mariadb["environment"]
    assert env["MARIADB_DATABASE"] == "shopledger"
    assert env["MARIADB_USER"] == "shopledger"
    assert "MARIADB_PASSWORD:?" in env["MARIADB_PASSWORD"], "required, never a default"
    assert "MARIADB_ROOT_PASSWORD:?" in env["MARIADB_ROOT_PASSWORD"]
    assert redis["image"] == "redis:7"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for service, path in ((mariadb, "/var/lib/mysql"), (redis, "/data")):
        volume = next(v for v in service["volumes"] if v.endswith(":" + path))
        assert volume.split(":", 1)[0] in document["volumes"], volume


def test_our_processes_wait_for_healthy_mysql_and_redis_and_for_the_schema_step() -> None:
    services = _services()
    for name in OUR_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["mariadb"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    # Tables are created once, by a one-shot step, before any long-running process starts:
    # bootstrap's CREATE TABLE is check-then-create and would race on an empty database.
    assert "migrate" not in services["migrate"]["depends_on"]
    assert services["migrate"]["restart"] == "no"
    for name in LONG_RUNNING:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
        assert services[name]["restart"] == "unless-stopped", name


def test_no_container_is_privileged_and_ours_keep_the_image_user() -> None:
    for name, service in _services().items():
        assert not service.get("privileged", False), name
        assert service.get("network_mode") != "host", name
        assert service.get("pid") != "host", name
        assert "cap_add" not in service, name
        if name in OUR_SERVICES:
            assert "user" not in service, f"{name} must run as the image's unprivileged user"


def test_processes_without_http_disable_the_images_http_health_check() -> None:
    services = _services()
    for name in ("migrate", "projections", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["api"], "api keeps the image's /healthz check"


def test_environment_is_the_scaled_production_configuration_and_loads_as_settings() -> None:
    services = _services()
    secrets = _compose()["secrets"]
    env = {"MARIADB_PASSWORD": "s3cret", "MARIADB_ROOT_PASSWORD": "r00t"}
    for name in OUR_SERVICES:
        raw = services[name]["environment"]
        assert isinstance(raw, dict), name
        values = {key: _interpolate(str(value), env) for key, value in raw.items()}
        assert values["SHOPLEDGER_ENVIRONMENT"] == "production"
        assert values["SHOPLEDGER_DATABASE_URL"] == (
            "mysql+pymysql://shopledger:s3cret@mariadb:3306/shopledger?charset=utf8mb4"
        )
        assert values["SHOPLEDGER_REDIS_URL"] == "redis://redis:6379/0"
        assert values["SHOPLEDGER_PUBLIC_URL"].startswith(("http://", "https://"))
        assert values["SHOPLEDGER_MAIL_URL"].startswith(("file:///", "smtp://", "smtps://"))
        # One signing key and one link secret for every process: compose secrets, read-only.
        assert services[name]["secrets"] == ["jwt_private_key", "link_secret"], name
        assert values["SHOPLEDGER_JWT_PRIVATE_KEY_FILE"] == "/run/secrets/jwt_private_key"
        assert values["SHOPLEDGER_LINK_SECRET_FILE"] == "/run/secrets/link_secret"
        assert "file" in secrets["jwt_private_key"] and "file" in secrets["link_secret"]
        # Our own validators accept every value (a typo would stop the process at start-up).
        settings = load_settings(
            **{
                key.removeprefix("SHOPLEDGER_").lower(): value
                for key, value in values.items()
                if key.startswith("SHOPLEDGER_")
            }
        )
        assert settings.is_mysql and not settings.embedded and not settings.projections_in_process
        # No card is taken by the sandbox unless a demo asks for it; no metrics token unless set.
        assert not settings.sandbox_cards_enabled and settings.metrics_token is None


def _settings_of(service: str, env: dict[str, str]) -> Any:
    raw = _services()[service]["environment"]
    values = {key: _interpolate(str(value), env) for key, value in raw.items()}
    return load_settings(
        **{
            key.removeprefix("SHOPLEDGER_").lower(): value
            for key, value in values.items()
            if key.startswith("SHOPLEDGER_")
        }
    )


def test_sandbox_cards_are_switched_on_for_a_demo_by_one_variable() -> None:
    env = {"MARIADB_PASSWORD": "s3cret", "MARIADB_ROOT_PASSWORD": "r00t"}
    for name in OUR_SERVICES:
        assert not _settings_of(name, env).sandbox_cards_enabled, name
        demo = _settings_of(name, {**env, "SHOPLEDGER_SANDBOX_CARDS": "true"})
        assert demo.environment == "production" and demo.sandbox_cards_enabled, name
    token = "t" * 24
    assert _settings_of("api", {**env, "SHOPLEDGER_METRICS_TOKEN": token}).metrics_token == token


def test_api_scales_behind_the_proxy_which_publishes_port_8000() -> None:
    document = _compose()
    services = document["services"]
    api, proxy = services["api"], services["proxy"]
    assert "ports" not in api, "a fixed host port on api would stop `--scale api=N`"
    assert api.get("expose") == ["8000"]
    assert "container_name" not in api
    assert "FORWARDED_ALLOW_IPS" not in api["environment"]  # the app decides, not uvicorn
    assert "172.16.0.0/12" in api["environment"]["SHOPLEDGER_TRUSTED_PROXIES"]
    assert [_interpolate(p, {}) for p in proxy["ports"]] == ["8000:8000"]
    config_name = proxy["configs"][0]["source"]
    conf = _interpolate(document["configs"][config_name]["content"], {})
    assert "listen 8000;" in conf
    assert "http://api:8000" in conf
    assert "resolver 127.0.0.11" in conf, "re-resolve `api` so new replicas get traffic"
    # Overwritten, not appended: a client's own X-Forwarded-For never reaches the app.
    assert "X-Forwarded-For $remote_addr;" in conf
    assert "proxy_add_x_forwarded_for" not in conf
    # The live channel: the WebSocket upgrade passed on, the SSE stream not buffered.
    ws = conf.split("location = /api/ws {", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert 'proxy_set_header Connection "upgrade";' in ws
    sse = conf.split("location = /api/notifications/stream {", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in sse
    # Metrics are per process (scraped from each api container) and not for the public.
    metrics = conf.split("location = /metrics {", 1)[1].split("}", 1)[0]
    assert "return 404;" in metrics and "proxy_pass" not in metrics


# --- Dockerfile ----------------------------------------------------------------------------------
def test_dockerfile_base_entrypoint_and_default_command() -> None:
    instructions = _dockerfile()
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    stage_names = {
        args.split()[-1]
        for keyword, args in instructions
        if keyword == "FROM" and " AS " in args.upper()
    }
    assert bases[0] == "python:3.11-slim"
    assert all(base == "python:3.11-slim" or base in stage_names for base in bases)
    final = _final_stage(instructions)
    entrypoint = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    cmd = [args for keyword, args in final if keyword == "CMD"]
    assert [_exec_form(e) for e in entrypoint] == [["shopledger"]]
    assert [_exec_form(c) for c in cmd] == [OUR_SERVICES["api"]]
    _parse_cli(_exec_form(cmd[0]), "Dockerfile CMD")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["shopledger"] == "shopledger.cli:main"


def test_dockerfile_layers_dependencies_before_the_source() -> None:
    instructions = _dockerfile()
    copies = [(i, args) for i, (keyword, args) in enumerate(instructions) if keyword == "COPY"]
    first_pyproject = next(i for i, args in copies if "pyproject.toml" in args.split())
    packages = ("aggregates", "commands", "shopledger")
    source = [
        i for i, args in copies if args.split()[0] == "." or args.split()[0].rstrip("/") in packages
    ]
    assert source, "the source is copied somewhere"
    assert first_pyproject < min(source)
    # The pyproject copy brings nothing else, and dependencies are installed right after it.
    assert instructions[first_pyproject][1].split() == ["pyproject.toml", "./"]
    installs = [
        i
        for i, (keyword, args) in enumerate(instructions)
        if keyword == "RUN" and "pip install" in args and first_pyproject < i < min(source)
    ]
    assert installs, "dependencies are installed between the pyproject copy and the source copy"
    # The project itself goes in without re-resolving dependencies.
    final = _final_stage(instructions)
    assert any(keyword == "RUN" and "pip install --no-deps" in args for keyword, args in final)


def test_dockerfile_has_no_dev_extras_and_no_tests() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "[dev]" not in text
    assert not re.search(r"\bpytest\b|\bhypothesis\b", text)
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    ignored = {line.strip().rstrip("/") for line in lines}
    excluded = (".venv", "var", ".git", "tests", "bench", "secrets", "*.pem", ".env")
    for entry in (*excluded, "**/__pycache__"):
        assert entry in ignored, f".dockerignore should exclude {entry}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    assert not needed & ignored, "the build needs these in its context"


def test_dockerfile_runs_as_a_non_root_user_with_a_writable_var_dir() -> None:
    final = _final_stage(_dockerfile())
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the final stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "SHOPLEDGER_VAR_DIR=/app/var" in env
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    assert "/app/var" in runs and f"chown -R {user}" in runs
    everywhere = " ".join(args for keyword, args in _dockerfile() if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in everywhere
    assert "PYTHONUNBUFFERED=1" in everywhere


def test_dockerfile_health_check_probes_healthz_with_urllib() -> None:
    final = _final_stage(_dockerfile())
    checks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    words = _exec_form(command)
    assert words[:2] == ["python", "-c"]
    assert "urllib.request" in words[2] and "http://127.0.0.1:8000/healthz" in words[2]
    compile(words[2], "HEALTHCHECK", "exec")
