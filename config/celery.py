import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tierwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# --- Row-level security: each task runs inside the tenant it was given (accounts.tenancy) ----------
@signals.task_prerun.connect
def _enter_task_tenant(task_id=None, task=None, args=None, kwargs=None, **_):
    from accounts.tenancy import enter_task_tenant

    enter_task_tenant(task_id, task, args or (), kwargs or {})


@signals.task_postrun.connect
def _leave_task_tenant(task_id=None, **_):
    from accounts.tenancy import leave_task_tenant

    leave_task_tenant(task_id)


@signals.worker_init.connect
def _check_database_role(**_):
    # Outside DEBUG a worker refuses to start as a role row-level security does not hold for.
    from django.core.exceptions import ImproperlyConfigured

    from accounts.rls import check_startup

    try:
        check_startup()
    except ImproperlyConfigured as exc:
        raise SystemExit(str(exc)) from exc  # Celery logs and ignores a handler's ordinary exception
