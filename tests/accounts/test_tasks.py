import pytest

from accounts.models import AuditEntry
from accounts.tasks import record_worker_heartbeat
from tests.conftest import make_world, wait_for


@pytest.mark.integration
def test_a_real_worker_on_redis_runs_a_task_with_a_tenant_id(celery_worker_process):
    world = make_world("worker-tenant", "Worker Tenant")
    result = record_worker_heartbeat.delay(world.tenant.pk)
    assert result.get(timeout=30) == "worker-tenant"
    entry = wait_for(lambda: AuditEntry.objects.for_tenant(world.tenant).filter(action="worker.heartbeat").first())
    assert entry.actor_label == "worker"
