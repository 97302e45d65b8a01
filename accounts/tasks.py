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
    from accounts import services
    from accounts.models import Membership, Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    membership = Membership.objects.for_tenant(tenant).select_related("user").filter(pk=membership_id).first()
    if membership is None:
        return False
    return services.send_invitation_email(tenant, membership=membership)
