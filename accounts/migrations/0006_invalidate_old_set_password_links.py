from django.contrib.auth.hashers import make_password
from django.db import migrations


def invalidate_old_set_password_links(apps, schema_editor):
    """The old invitation put a Django password-reset link in the tenant's outbox. Its token is derived from the
    password hash, so giving every person who never set a password a fresh unusable one kills those links."""
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(password__startswith="!").only("pk"):
        User.objects.filter(pk=user.pk).update(password=make_password(None))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_membership_invitations"),
    ]

    operations = [
        migrations.RunPython(invalidate_old_set_password_links, migrations.RunPython.noop),
    ]
