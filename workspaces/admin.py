from django.contrib import admin

from workspaces.models import Membership, WorkerHeartbeat, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_country", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["default_country", "created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    list_select_related = ["user", "workspace"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "last_seen_at", "beats", "last_source"]
    search_fields = ["hostname"]
    list_filter = ["last_seen_at"]
    readonly_fields = ["hostname", "last_seen_at", "beats", "last_source"]

    def has_add_permission(self, request):
        return False
