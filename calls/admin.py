from django.contrib import admin

from calls.models import CallAnalysis, CallIntervention, CallRecording, CallSession


@admin.register(CallSession)
class CallSessionAdmin(admin.ModelAdmin):
    list_display = ["call_sid", "workspace", "connector", "agent_version", "from_number", "to_number", "status",
                    "started_at"]
    list_filter = ["status", "direction"]
    search_fields = ["call_sid", "from_number", "to_number"]
    list_select_related = ["workspace", "connector", "agent_version__agent"]
    # The stream nonce is what makes a session parameter valid: never shown.
    exclude = ["stream_token_nonce"]
    readonly_fields = [f for f in ["call_sid", "workspace", "connector", "agent_version", "environment", "from_number",
                                   "to_number", "direction", "rejected_reason", "params", "stream_token_used_at",
                                   "started_at"]]

    def has_add_permission(self, request):
        return False  # made by the incoming-call webhook


from calls.models import CallActionRun  # noqa: E402 (kept apart from the import above: fewer merge conflicts)


@admin.register(CallActionRun)
class CallActionRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "name", "call_session", "ok", "status_code", "duration_ms"]
    list_filter = ["ok"]
    search_fields = ["name", "call_session__call_sid"]
    list_select_related = ["call_session"]
    readonly_fields = [f.name for f in CallActionRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CallRecording)
class CallRecordingAdmin(admin.ModelAdmin):
    list_display = ["recording_sid", "call_session", "status", "duration", "channels", "callbacks", "created_at"]
    list_filter = ["status"]
    search_fields = ["recording_sid", "call_session__call_sid"]
    list_select_related = ["call_session"]
    readonly_fields = [f.name for f in CallRecording._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CallIntervention)
class CallInterventionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "username", "kind", "call_session", "result"]
    list_filter = ["kind"]
    search_fields = ["username", "call_session__call_sid", "detail"]
    list_select_related = ["call_session"]
    readonly_fields = [f.name for f in CallIntervention._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CallAnalysis)
class CallAnalysisAdmin(admin.ModelAdmin):
    list_display = ["call_session", "status", "success", "model_used", "definition_label", "analysed_at"]
    list_filter = ["status"]
    search_fields = ["call_session__call_sid"]
    list_select_related = ["call_session"]
    readonly_fields = [f.name for f in CallAnalysis._meta.fields]

    def has_add_permission(self, request):
        return False
