from django.contrib.auth import views as auth_views
from django.urls import path

from workspaces import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("login/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("account/two-factor/", views.two_factor_setup, name="two_factor_setup"),
    path("settings/security/", views.workspace_security, name="workspace_security"),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/switch/", views.switch_workspace, name="switch_workspace"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
]
