from django.urls import path

from . import views

app_name = "dialer"

urlpatterns = [
    path("settings/dialer/", views.settings_page, name="settings"),
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
    path("settings/dialer/numbers/<int:pk>/route-to-dialer/", views.number_route_to_dialer,
         name="number_route_to_dialer"),
    path("settings/dialer/caller-ids/", views.caller_ids_page, name="caller_ids"),
    path("settings/dialer/caller-ids/add/", views.caller_id_add, name="caller_id_add"),
    path("settings/dialer/caller-ids/check/", views.caller_ids_check, name="caller_ids_check"),
    path("settings/dialer/caller-ids/<int:pk>/default/", views.caller_id_default, name="caller_id_default"),
    path("settings/dialer/caller-ids/<int:pk>/remove/", views.caller_id_remove, name="caller_id_remove"),
]
