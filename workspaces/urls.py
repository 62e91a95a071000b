from django.contrib.auth import views as auth_views
from django.urls import path

from workspaces import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/switch/", views.switch_workspace, name="switch_workspace"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
]
