from django.contrib import admin

from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookEvent


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("display_url", "workspace", "environment", "enabled", "failing_since", "disabled_at")
    list_filter = ("enabled",)
    exclude = ("secret", "url")  # a password typed into the URL stays masked (display_url)
    readonly_fields = ("display_url", "workspace", "environment", "failing_since", "disabled_at", "disabled_reason")


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("msg_id", "type", "endpoint", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "type")
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]

    def has_add_permission(self, request):
        return False  # written with the change that caused it (the outbox)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = ("event", "attempted_at", "status_code", "error")
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]

    def has_add_permission(self, request):
        return False  # written by the delivery worker
