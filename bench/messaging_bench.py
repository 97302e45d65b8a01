"""Messaging figures (issue 16): 10,000 personalised emails rendered, queued and delivered through real
Celery workers (2 worker processes), and the in-app prompts endpoint warm.

Run by bench/run.py (`--messaging-emails N`, 0 skips; `--only-messaging` runs these alone) on its bench
database, as the app role under row-level security. Mail goes to the outbox backend (the embedded
default: each email is built, headers and all, and stored), so delivery does real work.

Figures (one JSON line each):
- messaging_throughput: `send_to_contacts` tasks of 100 contacts each are enqueued; the 2 workers render each
  email (Jinja2 sandbox, personalised per contact), admit it (cap under each account's lock, the arbitrated
  bulk insert) and then deliver it (`deliver_messages` tasks of 50: build, List-Unsubscribe, store, mark
  sent); wall time from the first enqueue to the last email sent, messages/s (target < 60 s).
- messaging_prompts_p99: GET /api/v1/accounts/{id}/prompts?placement= through Django's WSGI handler called
  directly (as gunicorn calls it), warm, over accounts that each have a due prompt (target p99 < 10 ms);
  with wall and CPU (thread time) percentiles and the queries per request (counted after the timed loop).

Environment switches: BENCH_PROMPTS_ONLY=1 measures the prompts figure alone (no Celery workers);
BENCH_PROMPTS_PROFILE=<path> writes a pyinstrument profile of 500 more warm calls there.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0
TARGET_P99_MS = 10.0
CONTACTS_PER_ACCOUNT = 10
BATCH = 100  # contacts per send_to_contacts task (10 accounts)


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def seed(*, emails: int, prompt_accounts: int):
    """A tenant with emails / 10 accounts of 10 contacts, the demo templates, no quiet hours, a generous cap."""
    import datetime

    from accounts.models import Contact, CustomerAccount, Tenant
    from accounts.services import create_api_key
    from accounts.tenancy import tenant_context
    from messaging.demo import seed_messaging_demo
    from messaging.models import MessagingSettings

    tenant = Tenant.objects.create(slug="bench-messaging", name="Bench Messaging")
    with tenant_context(tenant):
        n_accounts = max(1, emails // CONTACTS_PER_ACCOUNT)
        CustomerAccount.objects.bulk_create(
            [
                CustomerAccount(tenant=tenant, external_id=f"m-{i:05d}", name=f"Customer {i}", industry="software")
                for i in range(max(n_accounts, prompt_accounts))
            ]  # fmt: skip
        )
        accounts = list(CustomerAccount.objects.for_tenant(tenant).order_by("external_id"))
        Contact.objects.bulk_create(
            [
                Contact(tenant=tenant, account=a, email=f"p{j}@{a.external_id}.test", name=f"Person {j} {a.name}")
                for a in accounts[:n_accounts]
                for j in range(CONTACTS_PER_ACCOUNT)
            ]  # fmt: skip
        )
        seed_messaging_demo(tenant)
        MessagingSettings.objects.for_tenant(tenant).update(
            cap_count=5, account_cap_count=50, quiet_hours_start=datetime.time(0), quiet_hours_end=datetime.time(0)
        )
        _, key = create_api_key(tenant, name="bench-prompts", scopes=["read"], actor="bench")
    return tenant, accounts, key


def _workers(env: dict, n: int):
    log_dir = ROOT / "var"
    log_dir.mkdir(exist_ok=True)
    procs = []
    for i in range(n):
        log_path = log_dir / f"bench-messaging-worker-{i}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-c", "1", "-n",
             f"bench-messaging-{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
             "--prefetch-multiplier", "1"],
            cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append((proc, log_path))
    return procs


def _ready(log_path: Path) -> bool:
    text = log_path.read_text()
    return "ready" in text or "celery@" in text


def _stop(procs) -> None:
    for proc, _ in procs:
        proc.terminate()
    for proc, _ in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_throughput(tenant, *, emails: int, workers: int) -> None:

    from accounts.models import Contact
    from accounts.tenancy import tenant_context
    from config.celery import app
    from messaging import rendering, tasks
    from messaging.models import Message, MessageState

    with tenant_context(tenant):
        contact_ids = list(Contact.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True)[:emails])
    context = rendering.sample_context("offer_sent")
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "0", "LOG_LEVEL": "WARNING"}
    app.conf.task_always_eager = False
    app.control.purge()
    procs = _workers(env, workers)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(_ready(p) for _, p in procs):
            time.sleep(0.3)
        start = time.perf_counter()
        for i in range(0, len(contact_ids), BATCH):
            batch = contact_ids[i : i + BATCH]
            tasks.send_to_contacts.delay(tenant.pk, batch, "offer-sent", "bench:offer:1", context, "upgrade")
        enqueued = time.perf_counter() - start
        sent = 0
        limit = time.monotonic() + 600
        while time.monotonic() < limit:
            with tenant_context(tenant):
                sent = Message.objects.for_tenant(tenant).filter(state=MessageState.SENT).count()
            if sent >= len(contact_ids):
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - start
    finally:
        _stop(procs)
    with tenant_context(tenant):
        states = dict(
            Message.objects.for_tenant(tenant)
            .values_list("state")
            .order_by()
            .annotate(n=__import__("django").db.models.Count("id"))
        )
    _emit("messaging_throughput", emails=len(contact_ids), sent=sent, states=states, worker_processes=workers,
          enqueue_s=round(enqueued, 2), seconds=round(seconds, 2), messages_per_s=round(sent / seconds, 1),
          target_s=TARGET_S, met=sent >= len(contact_ids) and seconds < TARGET_S)  # fmt: skip


def bench_prompts(tenant, accounts, key: str, *, calls: int = 5000) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from accounts.models import Contact
    from accounts.tenancy import tenant_context
    from bench.run import percentile
    from messaging import rendering
    from messaging.services import send_message

    targets = accounts[:200]
    with tenant_context(tenant):
        contacts = {c.account_id: c for c in Contact.objects.for_tenant(tenant).filter(account__in=targets)}
        context = rendering.sample_context("feature_gate")
        for account in targets:
            contact = contacts.get(account.pk)
            if contact is not None:
                send_message(tenant, contact=contact, template_key="gate-sso", cause="bench:gate", context=context,
                             category="upgrade", channel="in_app")  # fmt: skip
    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call(external_id: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": f"/api/v1/accounts/{external_id}/prompts",
            "QUERY_STRING": "placement=feature_gate", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "https",
            "HTTP_AUTHORIZATION": f"Bearer {key}", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }  # fmt: skip
        response = handler(environ, start_response)
        b"".join(response)
        response.close()

    ids = [a.external_id for a in targets]
    for external_id in ids:  # warm: connections, caches, the key's tenant
        call(external_id)
    statuses.clear()
    rng = random.Random(16)
    timings, cpu = [], []
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        call(rng.choice(ids))
        timings.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise RuntimeError(f"{len(bad)} prompt requests failed, e.g. {bad[0]}")
    queries: list[str] = []  # counted after the timed loop (counting adds its own cost); each request resets
    # connection.queries, so an execute wrapper counts rather than CaptureQueriesContext

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for external_id in ids[:20]:
            call(external_id)
    if os.environ.get("BENCH_PROMPTS_PROFILE"):  # a pyinstrument profile of 500 warm calls, for the next session
        from pyinstrument import Profiler

        with Profiler(interval=0.0002) as profiler:
            for _ in range(500):
                call(rng.choice(ids))
        Path(os.environ["BENCH_PROMPTS_PROFILE"]).write_text(profiler.output_text(unicode=False, show_all=False))
    p99 = percentile(timings, 99)
    _emit("messaging_prompts_p99", calls=calls, accounts=len(ids), p50_ms=round(percentile(timings, 50), 3),
          p99_ms=round(p99, 3), cpu_p50_ms=round(percentile(cpu, 50), 3), cpu_p99_ms=round(percentile(cpu, 99), 3),
          queries_per_request=round(len(queries) / 20, 2), target_p99_ms=TARGET_P99_MS, met=p99 < TARGET_P99_MS,
          note="warm; Django's WSGI handler called directly; each account has one due prompt")  # fmt: skip


def run(owner_url: str, *, emails: int = 10_000, workers: int = 2) -> None:
    t0 = time.perf_counter()
    tenant, accounts, key = seed(emails=emails, prompt_accounts=200)
    _emit("messaging_seed", contacts=emails, seconds=round(time.perf_counter() - t0, 1))
    bench_prompts(tenant, accounts, key)
    if os.environ.get("BENCH_PROMPTS_ONLY"):  # the prompts figure alone (the seed above made the contacts it uses)
        return
    bench_throughput(tenant, emails=emails, workers=workers)


def main() -> None:
    """`python -m bench.messaging_bench`: these figures alone, on a fresh bench database (as bench/run.py makes)."""
    import argparse

    from bench import run as bench_run

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base:
        sys.exit("Set DATABASE_URL=postgres://user@host:5432/name (the bench makes <name>_bench next to it).")
    owner_url, name, maintenance = bench_run.bench_database_url(base)
    bench_run.recreate_database(maintenance, name)
    bench_run.ensure_app_role(maintenance)
    env = bench_run.server_env(bench_run.as_role(owner_url, bench_run.APP_ROLE), owner_url)
    keys = ("DATABASE_URL", "DATABASE_OWNER_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "LOG_LEVEL")
    os.environ.update({k: env[k] for k in keys})
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    try:
        run(owner_url, emails=args.emails, workers=args.workers)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            bench_run.drop_database(maintenance, name)


if __name__ == "__main__":
    main()
