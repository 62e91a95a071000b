from django.contrib import admin

from connectors.models import ConnectorNumber, PhoneConnector


class ConnectorNumberInline(admin.TabularInline):
    model = ConnectorNumber
    extra = 0
    readonly_fields = ["phone_number", "attached_at", "drift", "last_checked_at", "observed_voice_url", "check_error"]
    can_delete = False


@admin.register(PhoneConnector)
class PhoneConnectorAdmin(admin.ModelAdmin):
    list_display = ["__str__", "workspace", "agent", "environment", "version_mode", "enabled", "alert_at", "created_at"]
    list_filter = ["enabled", "version_mode", "type"]
    search_fields = ["name", "identifier", "agent__name", "workspace__name"]
    list_select_related = ["workspace", "agent", "environment"]
    readonly_fields = ["identifier", "webhook_url", "created_at", "updated_at", "alert_at"]
    raw_id_fields = ["agent", "environment", "pinned_version", "workspace"]
    inlines = [ConnectorNumberInline]

    def get_readonly_fields(self, request, obj=None):
        # A connector never moves to another workspace (its agent, environment and numbers are that workspace's).
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["workspace"] if obj is not None else fields
