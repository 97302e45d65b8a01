"""How Tierwise runs: production settings, the compose file, the offline API docs, vendored assets, and
`make run`'s supervisor (scripts/run.py) started for real on free ports."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import yaml
from django.contrib.staticfiles import finders

from tests.services import free_port, port_open, unavailable

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "beat")
ALL_SERVICES = ("postgres", "redis", "web", "worker", "beat", "stripe", "mailpit")
APP_ENV = ("DATABASE_URL", "REDIS_URL", "STRIPE_API_BASE", "EMAIL_URL", "SECRET_KEY", "ALLOWED_HOSTS",
           "TIERWISE_ENCRYPTION_KEYS")  # fmt: skip
# What the embedded shape must not inherit from a CI or developer shell, or from other tests
# (the browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE, which check --deploy rightly rejects).
INHERITED_ENV_DROPPED = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "EMAIL_URL",
                         "STRIPE_API_BASE", "DJANGO_SETTINGS_MODULE", "DEBUG", "PORT", "STRIPE_PORT", "SEED_ARGS",
                         "DJANGO_ALLOW_ASYNC_UNSAFE", "CELERY_TASK_ALWAYS_EAGER")  # fmt: skip


def hermetic_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_ENV_DROPPED}
    env.update(TIERWISE_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1", **extra)
    return env


# --- production settings -------------------------------------------------------------------


def test_check_deploy_is_clean_under_a_production_environment(tmp_path):
    env = hermetic_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="tierwise.example.com",
        TIERWISE_ENCRYPTION_KEYS="zT6lBfWc1bJ0y0y3b7L0s4m6a4S8pQ2qA9kV1xW3hYc=",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = hermetic_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", ALLOWED_HOSTS="tierwise.example.com")
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


# --- docker compose ------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_runs_every_part_of_the_production_shape():
    services = load_compose()["services"]
    assert set(ALL_SERVICES) <= set(services)
    for name in (*APP_SERVICES, "migrate"):
        environment = services[name]["environment"]
        missing = [key for key in APP_ENV if key not in environment]
        assert not missing, f"{name} lacks {missing}"
        assert environment["DATABASE_URL"].startswith("postgres://") and "@postgres:" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert "mailpit" in environment["EMAIL_URL"]
        assert "stripe:8420" in environment["STRIPE_API_BASE"]
        # Secrets have no default: compose refuses to start without them.
        for secret in ("SECRET_KEY", "TIERWISE_ENCRYPTION_KEYS"):
            assert f"${{{secret}:?" in environment[secret]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert "devtools.stripe_standin" in services["stripe"]["command"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_builds_from_python_311_slim_collects_static_and_serves_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"^CMD .*gunicorn config\.wsgi:application", dockerfile, re.M)
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_parses_the_file_and_demands_the_secrets(tmp_path):
    cli = compose_cli()
    if cli is None:
        unavailable("neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "TIERWISE_ENCRYPTION_KEYS")}
    argv = [*cli, "-f", str(COMPOSE_FILE), "config"]

    refused = subprocess.run([*argv, "-q"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert refused.returncode != 0
    assert "SECRET_KEY" in refused.stderr + refused.stdout

    env.update(SECRET_KEY="s" * 50, TIERWISE_ENCRYPTION_KEYS="k")
    parsed = subprocess.run([*argv, "--services"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr
    assert set(ALL_SERVICES) <= set(parsed.stdout.split())


# --- offline assets ------------------------------------------------------------------------


def test_api_docs_page_loads_only_assets_we_serve_ourselves(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls), urls
    assert not [url for url in urls if re.match(r"^(https?:)?//", url)], urls
    assert not re.search(r"cdn\.|unpkg\.com|jsdelivr", html)
    for url in urls:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not among our static files"


def test_vendored_htmx_and_chartjs_are_the_files_their_readme_records():
    vendor = ROOT / "static" / "vendor"
    recorded = dict(re.findall(r"^\| `([\w.]+)` \|.*\| `([0-9a-f]{64})` \|$", (vendor / "README.md").read_text(), re.M))
    assert set(recorded) == {"htmx.min.js", "chart.umd.min.js"}
    for name, sha256 in recorded.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == sha256, name


# --- make run --------------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live process below pid (children of children too), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(opener: urllib.request.OpenerDirector, url: str | urllib.request.Request) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.integration
def test_make_run_starts_the_stack_serves_pages_runs_tasks_and_stops_without_orphans(tmp_path):
    if not Path("/proc/self/stat").exists():
        unavailable("needs Linux /proc to check for orphaned processes")
    port, stripe_port = free_port(), free_port()
    env = hermetic_env(tmp_path, PORT=str(port), STRIPE_PORT=str(stripe_port), SEED_ARGS="--accounts 10")
    output = open(tmp_path / "run.out", "w+")  # noqa: SIM115 - read back after the run
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    seen: set[int] = set()

    def log() -> str:
        return (tmp_path / "run.out").read_text()

    try:
        deadline = time.monotonic() + 120
        while "Tierwise is running" not in log():
            assert proc.poll() is None, f"run.py exited {proc.returncode}:\n{log()[-4000:]}"
            assert time.monotonic() < deadline, f"not ready in 120 s:\n{log()[-4000:]}"
            time.sleep(0.5)
        seen = descendants(proc.pid)
        banner = log()
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/admin/" in banner and f"{base}/api/v1/docs/" in banner
        assert "owner@acme.test" in banner  # seed_demo's logins are printed

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        assert get(opener, f"{base}/")[0] == 200
        status, login_page = get(opener, f"{base}/admin/login/")
        assert status == 200 and 'name="csrfmiddlewaretoken"' in login_page
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
        form = f"csrfmiddlewaretoken={token}&username=owner%40acme.test&password=tierwise-demo&next=%2Fadmin%2F"
        request = urllib.request.Request(f"{base}/admin/login/", data=form.encode(),
                                         headers={"Referer": f"{base}/admin/login/"})  # fmt: skip
        status, dashboard = get(opener, request)
        assert status == 200 and "Log out" in dashboard, dashboard[:2000]
        assert get(opener, f"{base}/static/vendor/htmx.min.js")[0] == 200

        # Tasks enqueued on the embedded broker by other processes run on the real worker. Ours may queue behind
        # what seed_demo enqueued (billing's webhooks), so any task's success counts; ours guarantees there is one.
        enqueue = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from accounts.models import Tenant; from accounts.tasks import record_worker_heartbeat; "
             "print(record_worker_heartbeat.delay(Tenant.objects.get(slug='acme').pk).id)"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"},
        )  # fmt: skip
        assert enqueue.returncode == 0, enqueue.stderr
        assert re.fullmatch(r"[0-9a-f-]{36}", enqueue.stdout.strip().splitlines()[-1])
        worker_log = tmp_path / "var" / "log" / "worker.log"
        deadline = time.monotonic() + 60
        while not re.search(r"Task [\w.]+\[[0-9a-f-]{36}\] succeeded", worker_log.read_text()):
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(0.3)
        seen |= descendants(proc.pid)

        # The seed's webhooks were held until web answered: every one arrived, none failed or was retried.
        stand_in = f"http://127.0.0.1:{stripe_port}/_standin/webhooks/holds"
        with urllib.request.urlopen(stand_in, timeout=5) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["holds"] == []
        stripe_log = (tmp_path / "var" / "log" / "stripe.log").read_text()
        assert not re.search(r"webhook \S+ to \S+ (failed|answered)", stripe_log), stripe_log[-3000:]

        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert proc.wait(timeout=30) == 0, log()[-3000:]
        time.sleep(0.5)
        assert seen, "run.py started no processes"
        assert not [pid for pid in seen if alive(pid)], "processes outlived make run"
        assert not port_open("127.0.0.1", port) and not port_open("127.0.0.1", stripe_port)
    finally:
        seen |= descendants(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in seen:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        output.close()
