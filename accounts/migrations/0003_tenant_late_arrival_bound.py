import django.core.validators
from django.db import migrations, models


def clamp_late_arrival_days(apps, schema_editor):
    Tenant = apps.get_model("accounts", "Tenant")
    Tenant.objects.filter(event_late_arrival_days__gt=90).update(event_late_arrival_days=90)
    Tenant.objects.filter(event_late_arrival_days__lt=1).update(event_late_arrival_days=1)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_external_id_no_trailing_newline"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="event_late_arrival_days",
            field=models.PositiveIntegerField(
                default=35,
                help_text="Events older than this many days are rejected (1 to 90).",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(90),
                ],
            ),
        ),
        migrations.RunPython(clamp_late_arrival_days, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(("event_late_arrival_days__gte", 1), ("event_late_arrival_days__lte", 90)),
                name="tenant_late_arrival_days_range",
            ),
        ),
    ]
