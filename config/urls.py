from django.contrib import admin
from django.urls import include, path

from workspaces import views as workspace_views

# The URLs Twilio and the browser dialer call on every call come first: resolving walks the list in order.
urlpatterns = [
    path("", workspace_views.home, name="home"),
    path("healthz", workspace_views.healthz, name="healthz"),
    path("", include("dialer.voice_urls")),
    path("", include("connectors.urls")),
    path("", include("workspaces.urls")),
    path("", include("dialer.urls")),
    path("", include("agents.urls")),
    path("admin/", admin.site.urls),
]
