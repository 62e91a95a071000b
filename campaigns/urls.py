from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    # The power dialer (static/dialer/power.js)
    path("v1/power/campaigns", views.power_campaigns, name="power_campaigns"),
    path("v1/power/campaigns/<int:campaign_id>/next", views.power_next, name="power_next"),
    path("v1/power/attempts/<int:attempt_id>/dialled", views.power_dialled, name="power_dialled"),
    path("v1/power/attempts/<int:attempt_id>/finish", views.power_finish, name="power_finish"),
    path("v1/power/attempts/<int:attempt_id>/release", views.power_release, name="power_release"),
    path("campaigns/", views.index, name="index"),
    path("campaigns/lists/<int:list_id>/", views.list_detail, name="list_detail"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="export"),
    path("campaigns/<int:campaign_id>/<str:action>/", views.campaign_action, name="action"),
]
