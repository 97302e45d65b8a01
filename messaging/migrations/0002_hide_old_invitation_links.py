from django.db import migrations


def mark_old_invitations_sensitive(apps, schema_editor):
    """Invitation emails sent before invitations were sensitive carried a set-password link readable by every
    staff member of the tenant: mark them like new ones, so the outbox hides the link from all but owners.
    (The links themselves were invalidated by accounts 0006.)"""
    OutboxEmail = apps.get_model("messaging", "OutboxEmail")
    for mail in OutboxEmail.objects.filter(
        subject__startswith="You're invited to", text_body__contains="/accounts/reset/"
    ):
        headers = dict(mail.headers or {})
        headers["X-Tierwise-Sensitive"] = "invitation-link"
        headers["X-Tierwise-Sensitive-Role"] = "owner"
        OutboxEmail.objects.filter(pk=mail.pk).update(headers=headers)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(mark_old_invitations_sensitive, migrations.RunPython.noop),
    ]
