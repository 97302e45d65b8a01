"""`make bench`: ingest and entitlement-check figures on PostgreSQL, one JSON line per figure.

What it does, in one run (about a minute on a 2-core machine):
1. creates its own database (`<DATABASE_URL's name>_bench`), migrates it as the owner
   (DATABASE_URL's role) with an unprivileged app role `tw_bench_app` as DATABASE_URL (created
   if missing: LOGIN, no superuser, no BYPASSRLS), so row-level security holds as in production,
   and seeds a tenant with a catalog (count, sum and unique-count meters), 200 accounts and API keys;
2. starts gunicorn with the production settings (DEBUG off) on a free loopback port, as the app role;
3. (a) sends N events through POST /api/v1/events in batches of 1,000 (idempotency and
   rollups on, as always; under row-level security), from a few client threads; samples the server's RSS;
4. (b) loads the same N events with one raw `COPY` into the same events table, as the owner
   (COPY FROM is refused on a table with row-level security, so this is the ceiling, not a peer);
5. times 10,000 entitlement checks with a warm cache, in-process (Django's handler called
   directly: the server-side cost) and over HTTP (gunicorn's own per-request time from its
   access log, plus what the client saw and checks/s).

Needs DATABASE_URL (PostgreSQL). Caches in Redis like production: REDIS_URL when set, else a
Redis on 127.0.0.1:6379 (db 14) when one answers, else the embedded default's file cache.
A benchmark, not a test: nothing here asserts; targets are printed beside the figures.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
TARGET_RATIO = 0.40
APP_ROLE = "tw_bench_app"
TARGET_P99_MS = 5.0


def emit(figure: str, **values) -> None:
    # The 1-minute load average says whether something else shared the cores during the figure.
    print(json.dumps({"figure": figure, **values, "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def bench_database_url(base: str) -> tuple[str, str, str]:
    """(bench URL, bench db name, maintenance URL) derived from DATABASE_URL."""
    parsed = urlparse(base)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("bench/run.py needs DATABASE_URL=postgres://... (the benchmark measures PostgreSQL)")
    name = (parsed.path.lstrip("/") or "tierwise") + "_bench"
    return (urlunparse(parsed._replace(path="/" + name)), name, urlunparse(parsed._replace(path="/postgres")))


def ensure_app_role(maintenance_url: str) -> None:
    """The unprivileged role the app runs as (roles are cluster-wide; this one is the bench's own)."""
    import psycopg2

    conn = psycopg2.connect(maintenance_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
    conn.close()


def as_role(url: str, role: str) -> str:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    netloc = f"{role}@{host}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def recreate_database(maintenance_url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(maintenance_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def analyze(owner_url: str, *tables: str) -> None:
    """Fresh planner statistics for `tables` (autovacuum's job in production), as their owner: the app role may not."""
    import psycopg2

    conn = psycopg2.connect(owner_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    conn.close()


def drop_database(maintenance_url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(maintenance_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def server_env(database_url: str, owner_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_OWNER_URL": owner_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdefghij"),
        "LOG_LEVEL": "WARNING",
    }
    return env


# --- Seeding (in this process, through the ORM) -------------------------------------------------


def seed(accounts: int) -> dict:
    from accounts.models import Tenant
    from accounts.tenancy import tenant_context

    # A fresh tenant id per run: cache keys carry it, and the Redis db may outlive the bench database.
    tenant = Tenant.objects.create(pk=int(time.time()) % 10**9, slug="bench", name="Bench", event_late_arrival_days=35)
    with tenant_context(tenant):  # the app role sees and writes tenant rows only inside their tenant
        return _seed_tenant(tenant, accounts)


def _seed_tenant(tenant, accounts: int) -> dict:
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.models import CustomerAccount
    from catalog.models import (
        Aggregation,
        Entitlement,
        Feature,
        FeatureKind,
        GovernanceState,
        Meter,
        MeterWindow,
        Product,
        Tier,
    )

    product = Product.objects.create(tenant=tenant, key="app", name="App")
    tier = Tier.objects.create(
        tenant=tenant,
        product=product,
        key="free",
        name="Free",
        rank=0,
        is_free=True,
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )
    specs = [
        ("api_calls", "api_call", Aggregation.COUNT, "", FeatureKind.METERED, 10**9),
        ("data_sent", "data_sent", Aggregation.SUM, "bytes", FeatureKind.METERED, 10**15),
        ("active_users", "user_active", Aggregation.UNIQUE_COUNT, "user_id", FeatureKind.METERED, 10**6),
        ("sso", "", "", "", FeatureKind.BOOLEAN, None),
    ]
    for key, event_name, aggregation, prop, kind, limit in specs:
        feature = Feature.objects.create(tenant=tenant, product=product, key=key, name=key, kind=kind)
        Entitlement.objects.create(tenant=tenant, tier=tier, feature=feature, limit=limit)
        if event_name:
            Meter.objects.create(
                tenant=tenant,
                feature=feature,
                key=key,
                name=key,
                event_name=event_name,
                aggregation=aggregation,
                property=prop,
                window=MeterWindow.CALENDAR_MONTH,
            )
    CustomerAccount.objects.bulk_create(
        [CustomerAccount(tenant=tenant, external_id=f"acct-{i:04d}", name=f"Account {i}") for i in range(accounts)]
    )
    keys = {}
    for label, scopes in (("ingest", ["ingest"]), ("check_http", ["read"]), ("check_local", ["read"])):
        _, secret = account_services.create_api_key(tenant, name=f"bench {label}", scopes=scopes, actor="bench")
        keys[label] = secret
    return {"tenant": tenant, "keys": keys, "features": [s[0] for s in specs]}


def make_events(n: int, accounts: int, seed_value: int = 42) -> list[dict]:
    """A product's stream over the month so far, in time order (as a vendor's pipeline flushes it),
    spread over every account: 70 % API calls (count), 20 % data sent (sum), 10 % active users (unique)."""
    rng = random.Random(seed_value)
    now = datetime.datetime.now(datetime.UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max((now - month_start).total_seconds() - 60, 3600)
    start = now - datetime.timedelta(seconds=span)
    events = []
    for i in range(n):
        at = start + datetime.timedelta(seconds=span * i / n)
        roll = rng.random()
        if roll < 0.7:
            name, properties = "api_call", {"endpoint": rng.choice(["/v1/items", "/v1/search", "/v1/export"])}
        elif roll < 0.9:
            name, properties = "data_sent", {"bytes": rng.randint(100, 10**6)}
        else:
            name, properties = "user_active", {"user_id": f"u{rng.randint(1, 50)}"}
        events.append(
            {
                "event": name,
                "account": f"acct-{rng.randrange(accounts):04d}",
                "timestamp": at.isoformat(),
                "idempotency_key": f"bench-{i}",
                "properties": properties,
            }
        )
    return events


# --- The server -------------------------------------------------------------------------------


class Server:
    def __init__(self, env: dict[str, str], workers: int, access_log: Path) -> None:
        self.port = free_port()
        self.access_log = access_log
        self._stderr = access_log.with_suffix(".err").open("w")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                "--access-logfile",
                str(access_log),
                "--access-logformat",
                "%(m)s %(U)s %(s)s %(D)s",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.port, "GET", "/healthz", None, {})
                if status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit("gunicorn exited: " + access_log.with_suffix(".err").read_text())
            time.sleep(0.2)
        else:
            sys.exit("gunicorn did not answer /healthz within 30 s")
        self.peak_rss = 0
        self._sampling = False

    def pids(self) -> list[int]:
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    @staticmethod
    def _status(pid: int, field: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def sample(self) -> None:
        total = sum(self._status(pid, "VmRSS") for pid in self.pids())
        self.peak_rss = max(self.peak_rss, total)

    def start_sampling(self) -> None:
        self._sampling = True

        def loop() -> None:
            while self._sampling:
                self.sample()
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> dict:
        self._sampling = False
        self._thread.join()
        hwm = {pid: self._status(pid, "VmHWM") for pid in self.pids()}
        return {
            "peak_total_rss_bytes": self.peak_rss,
            "peak_worker_rss_bytes": max(hwm.values(), default=0),
            "processes": len(hwm),
        }

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stderr.close()


def request(port: int, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        # Behind a TLS-terminating proxy, as in production (SECURE_SSL_REDIRECT stays on).
        conn.request(method, path, body=body, headers={"X-Forwarded-Proto": "https", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_parallel(jobs: list, worker, threads: int) -> float:
    """Run worker(job) for every job on `threads` threads; returns wall seconds."""
    lock = threading.Lock()
    queue = list(reversed(jobs))
    errors: list[BaseException] = []

    def loop() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                job = queue.pop()
            try:
                worker(job)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    started = time.perf_counter()
    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


# --- Figures ----------------------------------------------------------------------------------


def bench_api_ingest(server: Server, key: str, events: list[dict], threads: int) -> float:
    bodies = [json.dumps({"events": events[i : i + BATCH]}).encode() for i in range(0, len(events), BATCH)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    lock = threading.Lock()

    def send(body: bytes) -> None:
        status, raw = request(server.port, "POST", "/api/v1/events", body, headers)
        if status != 200:
            raise RuntimeError(f"ingest answered {status}: {raw[:300]!r}")
        answer = json.loads(raw)
        with lock:
            for name in totals:
                totals[name] += answer[name]

    # A running server is warm: every worker has imported, connected and seen the partitions once.
    warm = make_events(100 * threads * 3, 10, seed_value=1)
    for e in warm:
        e["idempotency_key"] = "warm-" + e["idempotency_key"]
    run_parallel(
        [json.dumps({"events": warm[i : i + 100]}).encode() for i in range(0, len(warm), 100)],
        lambda body: request(server.port, "POST", "/api/v1/events", body, headers),
        threads,
    )
    server.start_sampling()
    seconds = run_parallel(bodies, send, threads)
    rss = server.stop_sampling()
    emit(
        "ingest_api",
        events=len(events),
        batch=BATCH,
        client_threads=threads,
        seconds=round(seconds, 3),
        events_per_s=round(len(events) / seconds),
        **totals,
    )
    emit(
        "server_peak_rss",
        **rss,
        peak_total_rss_mib=round(rss["peak_total_rss_bytes"] / 2**20, 1),
        peak_worker_rss_mib=round(rss["peak_worker_rss_bytes"] / 2**20, 1),
    )
    if totals["accepted"] != len(events):
        emit("warning", message="not every event was accepted", **totals)
    return len(events) / seconds


def bench_raw_copy(owner_url: str, tenant_id: int, events: list[dict]) -> float:
    """The ceiling: one COPY as the owner (row-level security refuses COPY FROM to the app role)."""
    import psycopg2

    conn = psycopg2.connect(owner_url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT external_id, id FROM accounts_customeraccount WHERE tenant_id = %s", [tenant_id])
        ids = dict(cursor.fetchall())
    conn.commit()
    received = datetime.datetime.now(datetime.UTC).isoformat()
    buffer = io.StringIO()
    for e in events:
        buffer.write(
            f"{tenant_id}\t{ids[e['account']]}\t{e['event']}\t{e['timestamp']}\t{received}\t"
            f"copy-{e['idempotency_key']}\t{json.dumps(e['properties'], separators=(',', ':'))}\n"
        )
    buffer.seek(0)
    started = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.copy_expert(
            "COPY usage_event (tenant_id, account_id, event, occurred_at, received_at, "
            "idempotency_key, properties) FROM STDIN",
            buffer,
        )
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    emit(
        "ingest_copy",
        events=len(events),
        seconds=round(seconds, 3),
        events_per_s=round(len(events) / seconds),
        note="one COPY as the owner into the same partitioned, indexed events table; no idempotency, no rollups",
    )
    return len(events) / seconds


def check_bodies(accounts: int, features: list[str], n: int) -> list[bytes]:
    rng = random.Random(7)
    return [
        json.dumps(
            {"account": f"acct-{rng.randrange(accounts):04d}", "feature": rng.choice(features), "quantity": 1}
        ).encode()
        for _ in range(n)
    ]


def bench_checks_in_process(key: str, bodies: list[bytes]) -> None:
    """Django's WSGI handler called directly, as gunicorn calls it: the server-side cost without a socket."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info=None) -> None:
        statuses.append(status)

    def call(body: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/entitlements/check",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_X_FORWARDED_PROTO": "https",
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        response = handler(environ, start_response)
        b"".join(response)
        response.close()

    for body in set(bodies):  # warm the cache for every account x feature used
        call(body)
    statuses.clear()
    timings, cpu = [], []
    started = time.perf_counter()
    for body in bodies:
        t0, c0 = time.perf_counter(), time.thread_time()
        call(body)
        timings.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    seconds = time.perf_counter() - started
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise RuntimeError(f"{len(bad)} checks failed, e.g. {bad[0]}")
    p99 = percentile(timings, 99)
    emit(
        "check_in_process",
        calls=len(bodies),
        p50_ms=round(percentile(timings, 50), 3),
        p99_ms=round(p99, 3),
        cpu_p50_ms=round(percentile(cpu, 50), 3),
        cpu_p99_ms=round(percentile(cpu, 99), 3),
        checks_per_s=round(len(bodies) / seconds),
        target_p99_ms=TARGET_P99_MS,
        met=p99 < TARGET_P99_MS,
        note="warm cache; Django's WSGI handler called directly: API-key auth (1 query: the key inside its remembered "
        "tenant), throttle (1 Redis round trip) + cached answer (1)",
    )


def bench_checks_http(server: Server, key: str, bodies: list[bytes], threads: int) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for body in set(bodies):
        request(server.port, "POST", "/api/v1/entitlements/check", body, headers)
    log_offset = server.access_log.stat().st_size
    client_ms: list[float] = []
    lock = threading.Lock()

    def call(body: bytes) -> None:
        t0 = time.perf_counter()
        status, raw = request(server.port, "POST", "/api/v1/entitlements/check", body, headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200:
            raise RuntimeError(f"check answered {status}: {raw[:300]!r}")
        with lock:
            client_ms.append(elapsed)

    seconds = run_parallel(bodies, call, threads)
    time.sleep(0.5)  # let gunicorn flush its access log
    with server.access_log.open() as log:
        log.seek(log_offset)
        server_ms = [
            int(line.split()[3]) / 1000 for line in log if line.startswith("POST /api/v1/entitlements/check 200")
        ]
    p99 = percentile(server_ms, 99) if server_ms else None
    emit(
        "check_http",
        calls=len(bodies),
        client_threads=threads,
        checks_per_s=round(len(bodies) / seconds),
        server_p50_ms=round(percentile(server_ms, 50), 3) if server_ms else None,
        server_p99_ms=round(p99, 3) if p99 is not None else None,
        client_p50_ms=round(percentile(client_ms, 50), 3),
        client_p99_ms=round(percentile(client_ms, 99), 3),
        note="server_* is gunicorn's own per-request time (%(D)s) while client, workers, PostgreSQL and Redis "
        "share the cores; client_* add a new TCP connection per call. The 5 ms p99 target is the in-process figure.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 200_000)))
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 4)))
    parser.add_argument("--client-threads", type=int, default=int(os.environ.get("BENCH_CLIENT_THREADS", 4)))
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--check-threads", type=int, default=int(os.environ.get("BENCH_CHECK_THREADS", 2)))
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--rules-accounts", type=int, default=100_000, help="bench/rules.py: accounts (0 skips)")
    parser.add_argument("--only-rules", action="store_true", help="only the trigger-rule figures (bench/rules.py)")
    parser.add_argument("--offers-accounts", type=int, default=10_000, help="bench/offers_bench.py: accounts (0 skips)")
    parser.add_argument(
        "--only-offers", action="store_true", help="only the offer-engine figures (bench/offers_bench.py)"
    )
    parser.add_argument(
        "--portal-accounts", type=int, default=200, help="bench/portal_bench.py: seed_demo accounts (0 skips)"
    )
    parser.add_argument(
        "--only-portal", action="store_true", help="only the portal page figures (bench/portal_bench.py)"
    )
    parser.add_argument("--messaging-emails", type=int, default=10_000, help="bench/messaging_bench.py (0 skips)")
    parser.add_argument("--only-messaging", action="store_true", help="only the messaging figures")
    parser.add_argument("--console-accounts", type=int, default=100_000, help="bench/console_bench.py (0 skips)")
    parser.add_argument("--only-console", action="store_true", help="only the console worklist figure")
    parser.add_argument("--analytics-accounts", type=int, default=100_000, help="bench/analytics_bench.py (0 skips)")
    parser.add_argument("--only-analytics", action="store_true", help="only the analytics figures")
    parser.add_argument(
        "--only-checks", action="store_true", help="only the in-process entitlement-check figure (no server, no ingest)"
    )
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "")
    if not base:
        sys.exit("Set DATABASE_URL=postgres://user@host:5432/name (the bench makes <name>_bench next to it).")
    owner_url, name, maintenance = bench_database_url(base)
    recreate_database(maintenance, name)
    ensure_app_role(maintenance)
    url = as_role(owner_url, APP_ROLE)  # the app runs unprivileged, under row-level security
    if not os.environ.get("REDIS_URL") and redis_answers("127.0.0.1", 6379):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/14"  # the production shape caches in Redis
    env = server_env(url, owner_url)
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DATABASE_URL",
                "DATABASE_OWNER_URL",
                "DJANGO_SETTINGS_MODULE",
                "DEBUG",
                "SECRET_KEY",
                "LOG_LEVEL",
            )
        }
    )
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.conf import settings

    emit(
        "machine",
        cpus=os.cpu_count(),
        python=sys.version.split()[0],
        postgres_db=name,
        app_role=APP_ROLE,
        cache=settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        debug=settings.DEBUG,
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    if args.only_portal:
        from bench import portal_bench

        try:
            portal_bench.run(owner_url, accounts=args.portal_accounts)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    if args.only_analytics:
        from bench import analytics_bench

        try:
            analytics_bench.run(owner_url, accounts=args.analytics_accounts)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    if args.only_console:
        from bench import console_bench

        try:
            console_bench.run(owner_url, accounts=args.console_accounts)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    if args.only_messaging:
        from bench import messaging_bench

        try:
            messaging_bench.run(owner_url, emails=args.messaging_emails)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    if args.only_offers:
        from bench import offers_bench

        try:
            offers_bench.run(owner_url, accounts=args.offers_accounts)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    if args.only_rules:
        from bench import rules

        try:
            rules.run(owner_url, accounts=args.rules_accounts)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    world = seed(args.accounts)
    if args.only_checks:
        try:
            bench_checks_in_process(
                world["keys"]["check_local"], check_bodies(args.accounts, world["features"], args.checks)
            )
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)
        return
    events = make_events(args.events, args.accounts)
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server = Server(env, args.workers, Path(tmp) / "access.log")
            api_rate = bench_api_ingest(server, world["keys"]["ingest"], events, args.client_threads)
            copy_rate = bench_raw_copy(owner_url, world["tenant"].pk, events)
            ratio = api_rate / copy_rate
            emit("ingest_ratio", api_over_copy=round(ratio, 3), target=TARGET_RATIO, met=ratio >= TARGET_RATIO)
            bodies = check_bodies(args.accounts, world["features"], args.checks)
            bench_checks_in_process(world["keys"]["check_local"], bodies)
            bench_checks_http(server, world["keys"]["check_http"], bodies, args.check_threads)
            if args.rules_accounts:
                from bench import rules

                rules.run(owner_url, accounts=args.rules_accounts)
            if args.offers_accounts:
                from bench import offers_bench

                offers_bench.run(owner_url, accounts=args.offers_accounts)
            if args.messaging_emails:
                from bench import messaging_bench

                messaging_bench.run(owner_url, emails=args.messaging_emails)
            if args.portal_accounts:
                from bench import portal_bench

                portal_bench.run(owner_url, accounts=args.portal_accounts)
            if args.console_accounts:
                from bench import console_bench

                console_bench.run(owner_url, accounts=args.console_accounts)
            if args.analytics_accounts:
                from bench import analytics_bench

                analytics_bench.run(owner_url, accounts=args.analytics_accounts)
        finally:
            if server is not None:
                server.stop()
            from django.db import connections

            connections.close_all()
            if not args.keep:
                drop_database(maintenance, name)


if __name__ == "__main__":
    main()
