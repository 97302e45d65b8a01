from celery import shared_task


@shared_task(acks_late=True)
def record_worker_heartbeat(tenant_id: int) -> str:
    """Proves a worker can reach the tenant's data; idempotent in effect (append-only audit)."""
    from accounts import services
    from accounts.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    services.record_audit(tenant, actor="worker", action="worker.heartbeat")
    return tenant.slug
