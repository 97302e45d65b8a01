import django.db.models
from django.db import migrations

import accounts.models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_invalidate_old_set_password_links"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="locale",
            field=django.db.models.CharField(
                default="en",
                help_text="How money is written: en ($1,234.50), en_GB, de_DE (1.234,50 €), fr_FR, ja_JP…",
                max_length=16,
                validators=[accounts.models._validate_locale],
            ),
        ),
    ]
