from django.contrib import admin

from knowledge.models import KnowledgeBase, KnowledgeSnapshot, KnowledgeSource, VersionKnowledge


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "updated_at")
    list_select_related = ("workspace",)
    search_fields = ("name",)
    readonly_fields = ("content_hash",)


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "knowledge_base", "passage_count", "fetch_status", "fetched_at")
    list_filter = ("kind", "fetch_status")
    list_select_related = ("knowledge_base",)
    search_fields = ("title", "url", "file_name")
    readonly_fields = ("content_hash", "passage_count", "fetched_at", "fetch_status", "fetch_error")


@admin.register(KnowledgeSnapshot)
class KnowledgeSnapshotAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "passage_count", "created_at")
    list_select_related = ("workspace",)
    search_fields = ("name",)
    readonly_fields = [f.name for f in KnowledgeSnapshot._meta.fields]


@admin.register(VersionKnowledge)
class VersionKnowledgeAdmin(admin.ModelAdmin):
    list_display = ("version", "knowledge_base", "snapshot", "every_turn")
    list_select_related = ("version__agent", "knowledge_base", "snapshot")
    search_fields = ("knowledge_base__name", "version__agent__name")
    readonly_fields = ("version", "knowledge_base", "snapshot")
