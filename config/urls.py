from django.contrib import admin
from django.urls import include, path

from workspaces import views as workspace_views

urlpatterns = [
    path("", workspace_views.home, name="home"),
    path("healthz", workspace_views.healthz, name="healthz"),
    path("", include("workspaces.urls")),
    path("", include("dialer.urls")),
    path("", include("agents.urls")),
    path("", include("connectors.urls")),
    path("", include("calls.urls")),
    path("", include("webhooks.urls")),
    path("", include("analytics.urls")),
    path("", include("api.urls")),
    path("", include("knowledge.urls")),
    path("", include("campaigns.urls")),
    path("admin/", admin.site.urls),
]
handler500 = "workspaces.views.server_error"
