"""TwilioConnection, PhoneNumber, CallerId and NumberPurchase move here from `dialer`, tables unchanged."""
import django.db.models.deletion
import workspaces.fields
from django.db import migrations, models


MOVED = ['twilioconnection', 'phonenumber', 'callerid', 'numberpurchase']


def _content_types_follow(apps, schema_editor):
    """Permissions and admin history point at content types: move the old app's rows instead of making new ones."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="dialer", model__in=MOVED).update(app_label="telephony")


def _content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="telephony", model__in=MOVED).update(app_label="dialer")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('dialer', '0003_calls_legs_voicemails'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('workspaces', '0002_worker_heartbeat'),
    ]

    operations = [
        # The tables stay where they are (Meta.db_table): only Django's idea of which app owns them moves.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='PhoneNumber',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('sid', models.CharField(max_length=34, unique=True)),
                        ('phone_number', models.CharField(max_length=20)),
                        ('friendly_name', models.CharField(blank=True, max_length=64)),
                        ('locality', models.CharField(blank=True, max_length=64)),
                        ('region', models.CharField(blank=True, max_length=64)),
                        ('iso_country', models.CharField(blank=True, max_length=2)),
                        ('capabilities', models.JSONField(blank=True, default=dict)),
                        ('is_primary', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='phone_numbers', to='workspaces.workspace')),
                    ],
                    options={
                        'db_table': 'dialer_phonenumber',
                        'ordering': ['-is_primary', 'phone_number'],
                    },
                ),
                migrations.CreateModel(
                    name='NumberPurchase',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('phone_number', models.CharField(max_length=20)),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('purchasing', 'Purchasing'), ('completed', 'Completed')], default='pending', max_length=12)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('lease_until', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='number_purchases', to='workspaces.workspace')),
                        ('number', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='purchases', to='telephony.phonenumber')),
                    ],
                    options={
                        'db_table': 'dialer_numberpurchase',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='CallerId',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('phone_number', models.CharField(help_text='E.164', max_length=20)),
                        ('kind', models.CharField(choices=[('provisioned', 'Provisioned number'), ('verified', 'Verified external number')], max_length=12)),
                        ('friendly_name', models.CharField(blank=True, max_length=64)),
                        ('is_default', models.BooleanField(default=False)),
                        ('country', models.CharField(blank=True, max_length=2)),
                        ('region', models.CharField(blank=True, max_length=8)),
                        ('outgoing_caller_id_sid', models.CharField(blank=True, max_length=34)),
                        ('validation_code', models.CharField(blank=True, max_length=16)),
                        ('validation_requested_at', models.DateTimeField(blank=True, null=True)),
                        ('verified_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='caller_ids', to='workspaces.workspace')),
                        ('phone_number_ref', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='caller_ids', to='telephony.phonenumber')),
                    ],
                    options={
                        'db_table': 'dialer_callerid',
                        'ordering': ['-is_default', 'phone_number'],
                    },
                ),
                migrations.CreateModel(
                    name='TwilioConnection',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('mode', models.CharField(choices=[('hosted', 'Hosted'), ('byok', 'BYOK (Bring Your Own Key)')], default='byok', max_length=10)),
                        ('account_sid', models.CharField(blank=True, db_index=True, max_length=34)),
                        ('auth_token', workspaces.fields.EncryptedCharField(blank=True)),
                        ('status', models.CharField(choices=[('not_connected', 'Not connected'), ('validating', 'Validating'), ('connected', 'Connected'), ('error', 'Error')], default='not_connected', max_length=20)),
                        ('error_code', models.IntegerField(blank=True, null=True)),
                        ('error_message', models.TextField(blank=True)),
                        ('api_key_sid', models.CharField(blank=True, max_length=34)),
                        ('api_key_secret', workspaces.fields.EncryptedCharField(blank=True)),
                        ('twiml_app_sid', models.CharField(blank=True, max_length=34)),
                        ('validated_at', models.DateTimeField(blank=True, null=True)),
                        ('retry_message', models.CharField(blank=True, max_length=255)),
                        ('local_presence', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('workspace', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='twilio_connection', to='workspaces.workspace')),
                    ],
                    options={
                        'db_table': 'dialer_twilioconnection',
                    },
                ),
                migrations.AddConstraint(
                    model_name='phonenumber',
                    constraint=models.UniqueConstraint(fields=('workspace', 'phone_number'), name='uniq_workspace_phone_number'),
                ),
                migrations.AddConstraint(
                    model_name='numberpurchase',
                    constraint=models.UniqueConstraint(fields=('workspace', 'phone_number'), name='uniq_workspace_number_purchase'),
                ),
                migrations.AddConstraint(
                    model_name='callerid',
                    constraint=models.UniqueConstraint(fields=('workspace', 'phone_number'), name='uniq_workspace_caller_id'),
                ),
            ],
        ),
        migrations.RunPython(_content_types_follow, _content_types_back),
    ]
