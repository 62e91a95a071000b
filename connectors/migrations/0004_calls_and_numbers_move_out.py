"""The call models now live in `calls`, and attached numbers point at `telephony.PhoneNumber` (same tables)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("connectors", "0003_calls_studio"),
        ("telephony", "0001_initial"),
        ("calls", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="connectornumber",
                    name="phone_number",
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="connector_link", to="telephony.phonenumber"),
                ),
                migrations.DeleteModel(name="CallTurn"),
                migrations.DeleteModel(name="CallHandover"),
                migrations.DeleteModel(name="CallRecording"),
                migrations.DeleteModel(name="CallIntervention"),
                migrations.DeleteModel(name="CallSession"),
            ],
        ),
    ]
