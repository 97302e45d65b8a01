from celery import shared_task


@shared_task(acks_late=True)
def record_worker_heartbeat(tenant_id: int) -> str:
    """Proves a worker can reach the tenant's data; idempotent in effect (append-only audit)."""
    from accounts import services
    from accounts.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    services.record_audit(tenant, actor="worker", action="worker.heartbeat")
    return tenant.slug


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation(tenant_id: int, membership_id: int) -> bool:
    """Sends one invitation email, at most once per token even when redelivered (keyed in the membership row)."""
    from accounts import invitations
    from accounts.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return False
    return invitations.deliver_invitation(tenant, membership_id=membership_id)
