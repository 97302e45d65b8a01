"""`make run`: migrate, seed the demo, then start and supervise the whole embedded stack.

Started in order, each in its own process group so that Ctrl-C stops everything it started:

1. `manage.py migrate`
2. the Stripe stand-in (`python -m devtools.stripe_standin`, or the `localstripe` console script), its
   webhooks held (`--hold-webhooks startup`)
3. `manage.py seed_demo` (after the stand-in: billing's seed creates subscriptions in it)
4. web (gunicorn, or runserver with `--web runserver`), a Celery worker and Celery beat; once web
   answers, the stand-in's webhooks are released: the events the seed caused arrive once each, after
   the seed committed, instead of failing against a site that is not up and being retried
5. the banner with the demo logins, printed last (once web answers and the worker is ready); after it,
   only warnings and errors reach the terminal, so the banner stays in view

With no DATABASE_URL the database is SQLite under var/; with no REDIS_URL the worker and beat use
the filesystem broker configured in config/settings.py. Each child's output is shown with a name
prefix and kept in var/log/<name>.log. A child that dies is restarted with a backoff; one that keeps
dying stops the whole run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Restart policy for supervised children: give up after this many restarts inside the window.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 120.0
STOP_GRACE_S = 20.0  # a prefork worker's warm shutdown on the filesystem broker takes ~8 s

_print_lock = threading.Lock()
# Once the banner is printed, children's routine output stays in var/log/<name>.log (see `_loud`).
_console = {"quiet": False}
LOUD_MARKERS = ("WARNING", "ERROR", "CRITICAL", "Traceback", '"level": "WARN', '"level": "ERROR')


def _loud(line: str) -> bool:
    """Is this child's line worth the terminal after the banner (a warning, an error, a traceback)?"""
    return any(marker in line for marker in LOUD_MARKERS)


def say(message: str) -> None:
    with _print_lock:
        print(f"[run] {message}", flush=True)


# Children get SIGTERM if this supervisor dies without cleaning up (e.g. SIGKILL), so nothing is orphaned.
# Resolved before any fork: the pre-exec hook must not import or allocate.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    keep_output: bool = False

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a", buffering=1)  # noqa: SIM115 - closed by the pump thread
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {shlex.join(self.argv)}\n")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the terminal's Ctrl-C reaches only us
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls a pre-resolved prctl
        )
        threading.Thread(target=self._pump, args=(self.proc.stdout, log), daemon=True).start()

    def _pump(self, stream: IO[bytes] | None, log: IO[str]) -> None:
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                if self.keep_output:
                    self.output.append(line)
                with _print_lock:
                    if not _console["quiet"] or _loud(line):
                        print(f"[{self.name}] {line}", flush=True)
        finally:
            log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """Ask the child itself to stop: gunicorn and celery then shut their own pool down cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (pool workers included), then reap."""
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGKILL)  # start_new_session made the child its group's leader
        self.proc.wait()

    def stop(self) -> None:
        self.terminate()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop in {STOP_GRACE_S:.0f} s; killing it")
        self.kill_group()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Stopping(Exception):
    """Ctrl-C or SIGTERM arrived."""


class Supervisor:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.stop_requested = False

    def request_stop(self, signum: int, _frame: object) -> None:
        if not self.stop_requested:
            say(f"{signal.Signals(signum).name} received: stopping everything")
        self.stop_requested = True

    def check(self) -> None:
        if self.stop_requested:
            raise Stopping

    def run_once(self, name: str, argv: Sequence[str], *, keep_output: bool = False) -> list[str]:
        """Run a setup step to completion (still in its own group, so Ctrl-C stops it too)."""
        child = Child(name, list(argv), self.log_dir / f"{name}.log", keep_output=keep_output)
        self.children.append(child)
        child.start(self.env)
        assert child.proc is not None
        while child.proc.poll() is None:
            if self.stop_requested:
                raise Stopping
            time.sleep(0.1)
        self.children.remove(child)
        time.sleep(0.1)  # let the pump thread flush the last lines
        if child.proc.returncode != 0:
            raise SystemExit(f"[run] {name} failed with exit code {child.proc.returncode}; see {child.log_path}")
        return child.output

    def start(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, list(argv), self.log_dir / f"{name}.log")
        self.children.append(child)
        child.start(self.env)
        return child

    def supervise(self) -> None:
        """Restart children that die, with a backoff; stop when asked or when one keeps dying."""
        while True:
            self.check()
            for child in self.children:
                if child.running():
                    continue
                now = time.monotonic()
                code = child.proc.returncode if child.proc else None
                child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S]
                if len(child.restarts) >= MAX_RESTARTS:
                    raise SystemExit(
                        f"[run] {child.name} exited {MAX_RESTARTS} times in {RESTART_WINDOW_S:.0f} s "
                        f"(last exit code {code}); see {child.log_path}"
                    )
                delay = 2 ** len(child.restarts)
                say(f"{child.name} exited with code {code}; restarting in {delay} s")
                child.stop()  # reap and clear its group before starting again
                self._sleep(delay)
                child.restarts.append(time.monotonic())
                child.start(self.env)
            time.sleep(0.5)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(0.1)

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float, watch: Child | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check()
            if watch is not None and not watch.running():
                raise SystemExit(f"[run] {watch.name} exited while waiting for {what}; see {watch.log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"[run] {what} not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def stop_all(self) -> None:
        """TERM every child at once, give them STOP_GRACE_S together, then KILL what is left."""
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.name} did not stop in {STOP_GRACE_S:.0f} s; killing it")
            child.kill_group()
            say(f"stopped {child.name}")
        self.children.clear()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def without_password(url: str) -> str:
    """The URL as safe to print: any password replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def ensure_encryption_key(var_dir: Path) -> str:
    """A per-checkout Fernet key under var/, so tenant secrets stored by one run decrypt in the next."""
    path = var_dir / "dev-encryption-key"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode() + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def stripe_standin_argv(port: int, var_dir: Path) -> list[str]:
    if (ROOT / "devtools" / "stripe_standin").is_dir():
        # Its state lives beside the database it belongs to, so re-runs keep both and temp var dirs share neither.
        # Webhooks held from the first instant until web is up with the seed committed (see release_webhooks).
        return [PY, "-m", "devtools.stripe_standin", "--host", "127.0.0.1", "--port", str(port),
                "--state-file", str(var_dir / "stripe-standin.pickle"),
                "--hold-webhooks", WEBHOOK_HOLD]  # fmt: skip
    console = Path(PY).parent / "localstripe"
    if console.exists():
        return [str(console), "--port", str(port)]
    return [PY, "-c", "from localstripe.server import start; start()", "--port", str(port)]


WEBHOOK_HOLD = "startup"


def release_webhooks(stripe_base: str) -> int | None:
    """Let the stand-in deliver the webhooks it queued while the seed ran: the site answers now and sees
    every committed row, so each event arrives once, with no failed attempt. Returns how many were waiting
    (None: not our stand-in, e.g. plain localstripe, which never held them)."""
    data = urllib.parse.urlencode({"name": WEBHOOK_HOLD}).encode()
    request = urllib.request.Request(f"{stripe_base}/_standin/webhooks/release", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL we built
            return int(json.loads(response.read()).get("waiting", 0))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def web_argv(kind: str, port: int) -> list[str]:
    if kind == "runserver":
        # WhiteNoise's runserver_nostatic + DEBUG serves static files through the finders.
        return [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    # DEBUG=1 makes WhiteNoise serve static files straight from the finders (no collectstatic needed).
    return [
        PY, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
        "--timeout", "120", "--graceful-timeout", "5", "--access-logfile", "-",
    ]  # fmt: skip


def demo_lines(seed_output: list[str]) -> list[str]:
    """What seed_demo says from the demo tenant on (the slug and every login), without log records."""
    said = [line for line in seed_output if not line.lstrip().startswith("{")]  # logs are JSON lines
    for index, line in enumerate(said):
        if line.startswith("Demo tenant"):
            return said[index:]
    return said


def build_env(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="config.settings",
        STRIPE_API_BASE=f"http://127.0.0.1:{args.stripe_port}",
        TIERWISE_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        PORT=str(args.port),
    )
    env["TIERWISE_ENCRYPTION_KEYS"] = env.get("TIERWISE_ENCRYPTION_KEYS") or ensure_encryption_key(var_dir)
    env["SITE_URL"] = env.get("SITE_URL") or f"http://127.0.0.1:{args.port}"  # links in emails point at this run
    # Pytest or a shell may have eager mode on; make run always runs a real worker.
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    return env


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or "8000"), help="web port (PORT)")
    parser.add_argument(
        "--stripe-port",
        type=int,
        default=int(os.environ.get("STRIPE_PORT") or "8420"),
        help="Stripe stand-in port (STRIPE_PORT)",
    )
    parser.add_argument("--web", choices=["gunicorn", "runserver"], default=os.environ.get("WEB") or "gunicorn")
    parser.add_argument("--no-seed", action="store_true", help="skip seed_demo")
    parser.add_argument("--seed-args", default=os.environ.get("SEED_ARGS", ""), help='e.g. "--accounts 20"')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    var_dir = Path(os.environ.get("TIERWISE_VAR_DIR") or str(ROOT / "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env = build_env(args, var_dir)

    for port, what in ((args.port, "web"), (args.stripe_port, "Stripe stand-in")):
        if port_open(port):
            say(f"port {port} ({what}) is already in use — is another `make run` still running? "
                f"Choose another with PORT=... / STRIPE_PORT=...")  # fmt: skip
            return 1

    sup = Supervisor(env, var_dir / "log")
    signal.signal(signal.SIGINT, sup.request_stop)
    signal.signal(signal.SIGTERM, sup.request_stop)
    signal.signal(signal.SIGHUP, sup.request_stop)
    base = f"http://127.0.0.1:{args.port}"
    try:
        say(f"database: {without_password(env.get('DATABASE_URL', '')) or var_dir / 'tierwise.sqlite3'}")
        say(f"broker: {without_password(env.get('REDIS_URL', '')) or 'filesystem (' + str(var_dir / 'broker') + ')'}")
        sup.run_once("migrate", [PY, "manage.py", "migrate", "--noinput"])

        stripe = sup.start("stripe", stripe_standin_argv(args.stripe_port, var_dir))
        sup.wait_until("Stripe stand-in", lambda: port_open(args.stripe_port), timeout=30, watch=stripe)

        seed_output: list[str] = []
        if not args.no_seed:
            seed_output = sup.run_once(
                "seed", [PY, "manage.py", "seed_demo", *shlex.split(args.seed_args)], keep_output=True
            )

        web = sup.start("web", web_argv(args.web, args.port))
        worker = sup.start("worker", [
            PY, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2",
            # The filesystem broker has no fanout exchange: no gossip, mingle or remote control.
            "--without-gossip", "--without-mingle", "--hostname", f"worker-{args.port}@%h",
        ])  # fmt: skip
        worker.keep_output = True  # to see its "ready." line
        sup.start("beat", [
            PY, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(var_dir / "celerybeat-schedule"),
        ])  # fmt: skip
        sup.wait_until("web", lambda: http_ok(f"{base}/healthz"), timeout=60, watch=web)
        # The banner comes last, once the worker is ready too, so its start-up lines don't push it away.
        sup.wait_until("worker", lambda: any(" ready." in line for line in worker.output), timeout=90, watch=worker)
        worker.keep_output, worker.output = False, []
        waiting = release_webhooks(env["STRIPE_API_BASE"])  # web takes them, the worker applies them
        if waiting:
            say(f"Stripe stand-in: delivering the {waiting} webhook(s) the seed caused, now that the site is up")

        banner = [
            "",
            "=" * 72,
            "Tierwise is running. Ctrl-C stops everything.",
            f"  Site             {base}/",
            f"  Staff admin      {base}/admin/",
            f"  API docs         {base}/api/v1/docs/",
            f"  Stripe stand-in  {env['STRIPE_API_BASE']}",
            f"  Logs             {var_dir / 'log'}/",
            *[f"  {line}" for line in demo_lines(seed_output)],
            "  From here on only warnings and errors are shown; every line is in the logs above.",
            "=" * 72,
            "",
        ]
        with _print_lock:
            print("\n".join(banner), flush=True)
            _console["quiet"] = True  # the banner stays on screen: routine lines go to var/log only
        sup.supervise()
    except Stopping:
        pass
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr, flush=True)
        return 1
    finally:
        # Ignore further Ctrl-C while we stop children, so a double press cannot orphan them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sup.stop_all()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
