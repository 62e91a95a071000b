from django.urls import path

from dialer import coaching_views, views, webhooks

app_name = "dialer"

urlpatterns = [
    # The browser dialer and Twilio's voice webhooks (the workspace id picks the connection whose auth token
    # signs the request).
    path("v1/voice/token", views.voice_token, name="token"),
    path("v1/voice/normalize", views.number_normalize, name="normalize"),
    path("v1/voice/caller-ids", views.caller_id_options, name="caller_id_options"),
    path("v1/voice/outbound/<int:workspace_id>", webhooks.voice_outbound, name="outbound"),
    path("v1/voice/inbound/<int:workspace_id>", webhooks.voice_inbound, name="inbound"),
    path("v1/voice/status/<int:workspace_id>", webhooks.voice_status, name="status"),
    path("v1/voice/leg-status/<int:workspace_id>", webhooks.voice_leg_status, name="leg_status"),
    path("v1/voice/dial-done/<int:workspace_id>", webhooks.voice_dial_done, name="dial_done"),
    path("v1/voice/voicemail-done/<int:workspace_id>", webhooks.voice_voicemail_done, name="voicemail_done"),
    path("v1/voice/recording/<int:workspace_id>", webhooks.voice_recording_status, name="recording_status"),
    path("v1/voice/wrap-up", views.wrap_up_options, name="wrap_up_options"),
    path("v1/voice/calls/<str:call_sid>/disposition", views.call_disposition, name="call_disposition"),
    path("v1/voice/calls/<str:call_sid>/voicemail-drop", views.call_voicemail_drop, name="call_voicemail_drop"),
    # The voicemail-drop message, fetched by Twilio's <Play> (a signed URL, no session: not under /v1/).
    path("voicemail-drop/<str:token>", views.voicemail_message_audio, name="voicemail_message_audio"),
    path("calls/", views.call_log, name="call_log"),
    path("calls/export.csv", views.call_log_export, name="call_log_export"),
    path("v1/voice/conference/<int:workspace_id>", webhooks.voice_conference_status, name="conference_status"),
    # Coaching (dialer/coaching.py): live calls for supervisors, and who is on the rep's call
    path("calls/live/", coaching_views.live_calls, name="live_calls"),
    path("calls/live/<int:pk>/coach", coaching_views.coaching_start, name="coaching_start"),
    path("calls/coaching/<int:pk>/mode", coaching_views.coaching_mode, name="coaching_mode"),
    path("calls/coaching/mine", coaching_views.coaching_mine, name="coaching_mine"),
    path("calls/troubleshoot/", views.troubleshoot, name="troubleshoot"),
    path("calls/troubleshoot/checks", views.troubleshoot_checks, name="troubleshoot_checks"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("calls/<int:pk>/voicemails/<int:voicemail_pk>/audio", views.voicemail_audio, name="voicemail_audio"),
    # Settings → Dialer
    path("settings/dialer/", views.settings_page, name="settings"),
    path("settings/dialer/dispositions/", views.dispositions_page, name="dispositions"),
    path("settings/dialer/dispositions/voicemail-message", views.voicemail_message_preview,
         name="voicemail_message_preview"),
    path("settings/dialer/byok/", views.connect_byok, name="connect_byok"),
    path("settings/dialer/hosted/", views.connect_hosted, name="connect_hosted"),
    path("settings/dialer/check/", views.connection_check, name="connection_check"),
    path("settings/dialer/status/", views.connection_status, name="connection_status"),
    path("settings/dialer/local-presence/", views.local_presence, name="local_presence"),
    path("settings/dialer/numbers/", views.numbers_page, name="numbers"),
    path("settings/dialer/numbers/search/", views.number_search, name="number_search"),
    path("settings/dialer/numbers/provision/", views.number_provision, name="number_provision"),
    path("settings/dialer/numbers/purchases/", views.purchases_fragment, name="purchases"),
    path("settings/dialer/numbers/purchases/<int:pk>/cancel/", views.purchase_cancel, name="purchase_cancel"),
    path("settings/dialer/numbers/<int:pk>/primary/", views.number_primary, name="number_primary"),
    path("settings/dialer/numbers/<int:pk>/release/", views.number_release, name="number_release"),
    path("settings/dialer/numbers/<int:pk>/simulate-call/", views.number_simulate_call, name="number_simulate_call"),
    path("settings/dialer/numbers/<int:pk>/route-to-dialer/", views.number_route_to_dialer,
         name="number_route_to_dialer"),
    path("settings/dialer/caller-ids/", views.caller_ids_page, name="caller_ids"),
    path("settings/dialer/do-not-call/", views.do_not_call_page, name="do_not_call"),
    path("settings/dialer/do-not-call/<int:pk>/remove/", views.do_not_call_remove, name="do_not_call_remove"),
    path("settings/dialer/caller-ids/add/", views.caller_id_add, name="caller_id_add"),
    path("settings/dialer/caller-ids/check/", views.caller_ids_check, name="caller_ids_check"),
    path("settings/dialer/caller-ids/poll/", views.caller_ids_poll, name="caller_ids_poll"),
    path("help/public-url/", views.public_url_help, name="public_url_help"),
    path("settings/dialer/caller-ids/<int:pk>/default/", views.caller_id_default, name="caller_id_default"),
    path("settings/dialer/caller-ids/<int:pk>/remove/", views.caller_id_remove, name="caller_id_remove"),
]
