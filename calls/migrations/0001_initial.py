"""CallSession, its handovers, turns, recordings and interventions move here from `connectors`, tables unchanged."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = ['callsession', 'callhandover', 'callturn', 'callrecording', 'callintervention']


def _content_types_follow(apps, schema_editor):
    """Permissions and admin history point at content types: move the old app's rows instead of making new ones."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="connectors", model__in=MOVED).update(app_label="calls")


def _content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="calls", model__in=MOVED).update(app_label="connectors")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('agents', '0003_environment_recording'),
        ('connectors', '0003_calls_studio'),
        ('workspaces', '0002_worker_heartbeat'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (Meta.db_table): only Django's idea of which app owns them moves.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='CallSession',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('call_sid', models.CharField(max_length=64, unique=True)),
                        ('from_number', models.CharField(blank=True, max_length=64)),
                        ('to_number', models.CharField(blank=True, max_length=64)),
                        ('status', models.CharField(choices=[('ringing', 'Ringing'), ('in-progress', 'In progress'), ('completed', 'Completed'), ('busy', 'Busy'), ('failed', 'Failed'), ('no-answer', 'No answer'), ('canceled', 'Canceled'), ('rejected', 'Rejected by us')], default='ringing', max_length=16)),
                        ('direction', models.CharField(blank=True, default='inbound', max_length=24)),
                        ('rejected_reason', models.CharField(blank=True, max_length=255)),
                        ('params', models.JSONField(blank=True, default=dict)),
                        ('stream_token_nonce', models.CharField(blank=True, max_length=32)),
                        ('stream_token_used_at', models.DateTimeField(blank=True, null=True)),
                        ('started_at', models.DateTimeField(auto_now_add=True)),
                        ('ended_at', models.DateTimeField(blank=True, null=True)),
                        ('runtime_error', models.CharField(blank=True, max_length=255)),
                        ('recording_error', models.CharField(blank=True, max_length=255)),
                        ('agent_version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='call_sessions', to='agents.agentversion')),
                        ('connector', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='call_sessions', to='connectors.phoneconnector')),
                        ('environment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='call_sessions', to='agents.environment')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='call_sessions', to='workspaces.workspace')),
                    ],
                    options={
                        'db_table': 'connectors_callsession',
                        'ordering': ['-started_at'],
                    },
                ),
                migrations.CreateModel(
                    name='CallRecording',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('recording_sid', models.CharField(max_length=64, unique=True)),
                        ('status', models.CharField(choices=[('starting', 'Starting'), ('in-progress', 'Recording'), ('paused', 'Paused'), ('stopped', 'Stopped'), ('completed', 'Completed'), ('absent', 'Absent (no audio)'), ('failed', 'Failed')], default='in-progress', max_length=16)),
                        ('duration', models.PositiveIntegerField(blank=True, help_text='Seconds.', null=True)),
                        ('channels', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('source', models.CharField(blank=True, max_length=40)),
                        ('error_code', models.CharField(blank=True, max_length=16)),
                        ('recording_started_at', models.DateTimeField(blank=True, null=True)),
                        ('callbacks', models.PositiveIntegerField(default=0, help_text='Status callbacks received (retries included).')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('call_session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='recordings', to='calls.callsession')),
                    ],
                    options={
                        'db_table': 'connectors_callrecording',
                        'ordering': ['created_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='CallIntervention',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('username', models.CharField(help_text='Who, kept if the user is deleted.', max_length=150)),
                        ('kind', models.CharField(choices=[('takeover', 'Took over (handover action)'), ('transfer', 'Transferred to a number'), ('instruction', 'Instructed the agent'), ('end', 'Ended the call')], max_length=12)),
                        ('detail', models.TextField(blank=True, help_text='The action name, the number, or the instruction.')),
                        ('result', models.CharField(blank=True, max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='call_interventions', to=settings.AUTH_USER_MODEL)),
                        ('call_session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='interventions', to='calls.callsession')),
                    ],
                    options={
                        'db_table': 'connectors_callintervention',
                        'ordering': ['created_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='CallHandover',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('action_name', models.CharField(max_length=64)),
                        ('destination', models.CharField(max_length=20)),
                        ('transport', models.CharField(choices=[('media_streams', 'Media Streams'), ('conversation_relay', 'ConversationRelay')], max_length=24)),
                        ('requested_at', models.DateTimeField(auto_now_add=True)),
                        ('outcome', models.CharField(choices=[('pending', 'Dialling'), ('answered', 'Answered'), ('busy', 'Busy'), ('no-answer', 'No answer'), ('failed', 'Failed'), ('caller-gone', 'Caller had hung up'), ('not-redirected', 'Could not redirect the call')], default='pending', max_length=16)),
                        ('outcome_at', models.DateTimeField(blank=True, null=True)),
                        ('dial_call_sid', models.CharField(blank=True, max_length=64)),
                        ('dial_duration', models.PositiveIntegerField(blank=True, null=True)),
                        ('fallback', models.CharField(blank=True, max_length=80)),
                        ('answer_twiml', models.TextField(blank=True)),
                        ('detail', models.CharField(blank=True, max_length=255)),
                        ('call_session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='handovers', to='calls.callsession')),
                    ],
                    options={
                        'db_table': 'connectors_callhandover',
                        'ordering': ['requested_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='CallTurn',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('seq', models.PositiveIntegerField()),
                        ('role', models.CharField(choices=[('agent', 'Agent'), ('caller', 'Caller'), ('event', 'Event')], max_length=8)),
                        ('text', models.TextField(blank=True)),
                        ('heard', models.BooleanField(default=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('call_session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='turns', to='calls.callsession')),
                    ],
                    options={
                        'db_table': 'connectors_callturn',
                        'ordering': ['call_session_id', 'seq'],
                    },
                ),
                migrations.AddIndex(
                    model_name='callsession',
                    index=models.Index(fields=['workspace', '-started_at'], name='callsession_ws_started'),
                ),
                migrations.AddIndex(
                    model_name='callrecording',
                    index=models.Index(fields=['created_at'], name='callrecording_created'),
                ),
                migrations.AddConstraint(
                    model_name='callturn',
                    constraint=models.UniqueConstraint(fields=('call_session', 'seq'), name='uniq_call_turn_seq'),
                ),
            ],
        ),
        migrations.RunPython(_content_types_follow, _content_types_back),
    ]
