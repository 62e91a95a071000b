from django.contrib import admin

from workspaces.models import AuditEntry, Membership, WorkerHeartbeat, Workspace


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


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by the services only."""

    list_display = ["created_at", "workspace", "actor_label", "action", "object_type", "object_label", "ip_address"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "object_label", "workspace__name"]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "workspace", "actor", "actor_label", "action", "object_type", "object_id",
                       "object_label", "details", "ip_address"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
