from django.urls import path

from . import views

app_name = "dialer"

urlpatterns = [
    path("settings/dialer/", views.settings_page, name="settings"),
    path("settings/dialer/numbers/search/", views.number_search, name="number_search"),
]
