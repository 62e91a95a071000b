from django.urls import path

from calls import views, webhooks

app_name = "calls"

urlpatterns = [
    path("studio/calls/", views.calls_list, name="list"),
    path("studio/calls/export.csv", views.calls_export_csv, name="list_export_csv"),
    path("studio/calls/export.json", views.calls_export_json, name="list_export_json"),
    path("studio/calls/live/", views.live_view, name="live"),
    path("studio/calls/live/stats/", views.live_stats, name="live_stats"),
    path("studio/calls/<int:call_id>/", views.call_detail, name="detail"),
    path("studio/calls/<int:call_id>/export.json", views.call_export, name="export"),
    path("studio/calls/<int:call_id>/analyse/", views.call_analyse, name="analyse"),
    path("studio/calls/<int:call_id>/analysis/", views.call_analysis_card, name="analysis_card"),
    path("studio/calls/<int:call_id>/recordings/<int:recording_id>/audio", views.recording_audio,
         name="recording_audio"),
    path("studio/calls/place/", views.call_place, name="place"),
    path("v1/voice/transfers/offer", views.rep_transfer_offer, name="rep_transfer_offer"),
    path("v1/voice/transfers/accept", views.rep_transfer_accept, name="rep_transfer_accept"),
    path("v1/voice/transfers/decline", views.rep_transfer_decline, name="rep_transfer_decline"),
    path("v1/calls/outbound/<int:session_id>/answer", webhooks.outbound_answer, name="outbound_answer"),
    path("v1/calls/outbound/<int:session_id>/amd", webhooks.outbound_amd, name="outbound_amd"),
    path("v1/calls/outbound/<int:session_id>/status", webhooks.outbound_status, name="outbound_status"),
    path("v1/calls/outbound/<int:session_id>/recording-status", webhooks.outbound_recording_status,
         name="outbound_recording_status"),
    *[path(f"v1/calls/outbound/<int:session_id>/{name}", view, name="outbound_" + name.replace("-", "_"))
      for name, view in webhooks.OUTBOUND_HANDOVERS.items()],
    path("v1/audio/voicemail/<str:token>", webhooks.voicemail_audio, name="voicemail_audio"),
    path("v1/audio/brief/<str:token>", webhooks.brief_audio, name="brief_audio"),
    path("studio/agents/<int:agent_id>/tests/run/", views.test_run_start, name="test_run_start"),
]
