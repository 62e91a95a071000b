from django.urls import path

from knowledge import views

app_name = "knowledge"

_base = "studio/knowledge/"

urlpatterns = [
    path(_base, views.knowledge_list, name="list"),
    path(_base + "<int:kb_id>/", views.knowledge_detail, name="detail"),
    path(_base + "<int:kb_id>/delete/", views.knowledge_delete, name="delete"),
    path(_base + "<int:kb_id>/sources/text/", views.source_text_add, name="add_text"),
    path(_base + "<int:kb_id>/sources/file/", views.source_file_add, name="add_file"),
    path(_base + "<int:kb_id>/sources/url/", views.source_url_add, name="add_url"),
    path(_base + "<int:kb_id>/sources/<int:source_id>/", views.source_detail, name="source"),
    path(_base + "<int:kb_id>/sources/<int:source_id>/fetch/", views.source_refetch, name="fetch"),
    path(_base + "<int:kb_id>/sources/<int:source_id>/delete/", views.source_delete, name="source_delete"),
    path(_base + "<int:kb_id>/try/", views.knowledge_try, name="try"),
    path(_base + "<int:kb_id>/agents/", views.knowledge_attach, name="attach"),
    path(_base + "snapshots/<int:snapshot_id>/", views.snapshot_detail, name="snapshot"),
]
