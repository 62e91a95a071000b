from django.contrib import admin

from dialer.models import Call, CallLeg, Voicemail


class CallLegInline(admin.TabularInline):
    model = CallLeg
    extra = 0
    fields = ["sid", "kind", "to_number", "user", "status", "answered_at", "ended_at", "duration"]
    readonly_fields = fields
    can_delete = False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["sid", "workspace", "direction", "user", "from_number", "to_number", "status", "duration",
                    "started_at"]
    list_filter = ["direction", "status"]
    search_fields = ["sid", "from_number", "to_number", "workspace__name", "user__username"]
    list_select_related = ["workspace", "user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "started_at"
    inlines = [CallLegInline]

    def has_add_permission(self, request):
        return False  # made by Twilio's webhooks


@admin.register(Voicemail)
class VoicemailAdmin(admin.ModelAdmin):
    list_display = ["recording_sid", "workspace", "call", "status", "duration", "created_at"]
    list_filter = ["status"]
    search_fields = ["recording_sid", "call_sid", "workspace__name"]
    list_select_related = ["workspace", "call"]
    raw_id_fields = ["call"]
