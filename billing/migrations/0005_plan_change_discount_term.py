from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_licence_spelling"),
    ]

    operations = [
        migrations.AddField(
            model_name="planchange",
            name="discount_percent",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="Percent off (None: the licence's own).",
                max_digits=5,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="planchange",
            name="discount_explanation",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="planchange",
            name="term_years",
            field=models.PositiveSmallIntegerField(
                blank=True, help_text="The committed term bought (None: the licence keeps its own).", null=True
            ),
        ),
    ]
