from django.urls import path

from api import views

app_name = "api"

urlpatterns = [
    path("calls", views.CallsView.as_view(), name="calls"),
    path("calls/<int:call_id>", views.CallDetailView.as_view(), name="call"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.docs, name="docs"),
]
