from django.urls import path

from webhooks import views

app_name = "webhooks"

_base = "studio/environments/<str:kind>/webhooks/"

urlpatterns = [
    path("studio/webhooks/reference/", views.reference, name="reference"),
    path(_base, views.endpoint_list, name="list"),
    path(_base + "<int:endpoint_id>/", views.endpoint_detail, name="detail"),
    path(_base + "<int:endpoint_id>/enable/", views.endpoint_enable, name="enable"),
    path(_base + "<int:endpoint_id>/disable/", views.endpoint_disable, name="disable"),
    path(_base + "<int:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
    path(_base + "<int:endpoint_id>/test/", views.endpoint_test, name="test"),
    path(_base + "<int:endpoint_id>/events/<int:event_id>/redeliver/", views.event_redeliver, name="redeliver"),
]
