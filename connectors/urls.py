from django.urls import path

from connectors import views, webhooks

app_name = "connectors"

urlpatterns = [
    path("v1/agents/<str:identifier>/twilio-config", webhooks.twilio_config, name="twilio_config"),
    *[path(f"v1/agents/<str:identifier>/{name}", view,
           name="relay_handover" if name == "handover" else name.replace("-", "_"))
      for name, view in webhooks.HANDOVERS.items()],
    path("v1/agents/<str:identifier>/recording-status", webhooks.recording_status, name="recording_status"),
    path("studio/connectors/", views.connector_list, name="list"),
    path("studio/connectors/new/", views.connector_create, name="create"),
    path("studio/connectors/<int:connector_id>/", views.connector_detail, name="detail"),
    path("studio/connectors/<int:connector_id>/edit/", views.connector_edit, name="edit"),
    path("studio/connectors/<int:connector_id>/enable/", views.connector_enable, name="enable"),
    path("studio/connectors/<int:connector_id>/pin/", views.connector_pin, name="pin"),
    path("studio/connectors/<int:connector_id>/disable/", views.connector_disable, name="disable"),
    path("studio/connectors/<int:connector_id>/alert/clear/", views.connector_alert_clear, name="alert_clear"),
    path("studio/connectors/<int:connector_id>/numbers/attach/", views.connector_attach, name="attach"),
    path("studio/connectors/<int:connector_id>/numbers/<int:link_id>/detach/", views.connector_detach,
         name="detach"),
    path("studio/connectors/<int:connector_id>/numbers/check/", views.connector_check, name="check"),
]
