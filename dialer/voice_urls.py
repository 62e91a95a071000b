"""Browser dialer URLs: /v1/voice/* (token, Twilio webhooks) and /calls/* (call log, Troubleshoot Calls)."""
from django.urls import path

from . import voice_views as views

app_name = "voice"

urlpatterns = [
    path("v1/voice/token", views.voice_token, name="token"),
    path("v1/voice/normalize", views.number_normalize, name="normalize"),
    path("v1/voice/caller-ids", views.caller_id_options, name="caller_id_options"),
    # Twilio webhooks: the workspace id picks the connection whose auth token signs the request.
    path("v1/voice/outbound/<int:workspace_id>", views.voice_outbound, name="outbound"),
    path("v1/voice/inbound/<int:workspace_id>", views.voice_inbound, name="inbound"),
    path("v1/voice/status/<int:workspace_id>", views.voice_status, name="status"),
    path("v1/voice/leg-status/<int:workspace_id>", views.voice_leg_status, name="leg_status"),
    path("v1/voice/dial-done/<int:workspace_id>", views.voice_dial_done, name="dial_done"),
    path("v1/voice/voicemail-done/<int:workspace_id>", views.voice_voicemail_done, name="voicemail_done"),
    path("v1/voice/recording/<int:workspace_id>", views.voice_recording_status, name="recording_status"),
    # Pages
    path("calls/", views.call_log, name="call_log"),
    path("calls/troubleshoot/", views.troubleshoot, name="troubleshoot"),
    path("calls/troubleshoot/checks", views.troubleshoot_checks, name="troubleshoot_checks"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("calls/<int:pk>/voicemails/<int:voicemail_pk>/audio", views.voicemail_audio, name="voicemail_audio"),
]
