from django.contrib import admin

from agents.models import (
    Agent,
    AgentVersion,
    ApiAction,
    AuthConnector,
    Environment,
    EnvironmentSecret,
    EnvironmentVariable,
    HandoverAction,
)


class HandoverActionInline(admin.TabularInline):
    model = HandoverAction
    extra = 0

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_published

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class ApiActionInline(admin.TabularInline):
    """Shown, not edited: Studio's form validates the templates and keeps the version's action requirements."""

    model = ApiAction
    extra = 0
    fields = ["name", "method", "url", "auth_connector", "timeout_seconds", "result_pointer"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    has_change_permission = has_add_permission
    has_delete_permission = has_add_permission


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "slug", "updated_at"]
    search_fields = ["name", "slug", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]


@admin.register(AgentVersion)
class AgentVersionAdmin(admin.ModelAdmin):
    list_display = ["agent", "label", "state", "transport", "provider", "published_at", "published_by"]
    list_filter = ["state", "transport", "provider"]
    search_fields = ["agent__name"]
    list_select_related = ["agent", "published_by"]
    raw_id_fields = ["agent", "published_by"]
    inlines = [HandoverActionInline, ApiActionInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_published:
            # Published versions never change: everything is read-only.
            return [f.name for f in self.model._meta.fields]
        return ["state", "number", "published_at", "published_by", "action_requirements"]

    def has_change_permission(self, request, obj=None):
        # Published versions open as a read-only view page.
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_published)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_published)


class SecretInline(admin.TabularInline):
    model = EnvironmentSecret
    extra = 0
    exclude = ["value"]
    readonly_fields = ["name", "masked_value", "updated_at"]
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False  # secrets are written in Studio (write-only, masked)


class VariableInline(admin.TabularInline):
    model = EnvironmentVariable
    extra = 0


class AuthConnectorInline(admin.TabularInline):
    model = AuthConnector
    extra = 0
    exclude = ["secret"]
    readonly_fields = ["name", "kind", "config", "masked_secret", "updated_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["workspace", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]
    inlines = [SecretInline, VariableInline, AuthConnectorInline]


@admin.register(EnvironmentSecret)
class EnvironmentSecretAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "masked_value", "updated_at"]
    search_fields = ["name", "environment__workspace__name"]
    list_filter = ["environment__kind"]
    exclude = ["value"]
    readonly_fields = ["masked_value", "updated_at"]
    list_select_related = ["environment__workspace"]

    def has_add_permission(self, request):
        return False


@admin.register(AuthConnector)
class AuthConnectorAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "environment", "masked_secret", "updated_at"]
    search_fields = ["name", "environment__workspace__name"]
    list_filter = ["kind", "environment__kind"]
    exclude = ["secret"]
    readonly_fields = ["masked_secret", "updated_at"]
    list_select_related = ["environment__workspace"]

    def has_add_permission(self, request):
        return False
