"""The Twilio account's models now live in `telephony` (same tables)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("dialer", "0003_calls_legs_voicemails"),
        ("telephony", "0001_initial"),
        ("connectors", "0004_calls_and_numbers_move_out"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="NumberPurchase"),
                migrations.DeleteModel(name="CallerId"),
                migrations.DeleteModel(name="PhoneNumber"),
                migrations.DeleteModel(name="TwilioConnection"),
            ],
        ),
    ]
