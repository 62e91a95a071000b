from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.index, name="index"),
    path("campaigns/lists/<int:list_id>/", views.list_detail, name="list_detail"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="export"),
    path("campaigns/<int:campaign_id>/<str:action>/", views.campaign_action, name="action"),
]
