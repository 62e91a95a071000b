from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("studio/analytics/", views.studio, name="studio"),
    path("analytics/dialer/", views.dialer, name="dialer"),
]
