from django.urls import path

from api import views

app_name = "api"

urlpatterns = [
    path("api/v1/calls", views.CallsView.as_view(), name="calls"),
    path("api/v1/calls/<int:call_id>", views.CallDetailView.as_view(), name="call"),
    path("api/v1/schema/", views.SchemaView.as_view(), name="schema"),
    path("api/v1/docs/", views.docs, name="docs"),
    # Studio: the workspace's API keys (admins).
    path("settings/api-keys/", views.api_keys_page, name="keys"),
    path("settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="key_revoke"),
]
