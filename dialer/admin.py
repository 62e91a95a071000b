from django.contrib import admin

from .models import PhoneNumber, TwilioConnection


@admin.register(TwilioConnection)
class TwilioConnectionAdmin(admin.ModelAdmin):
    list_display = ["workspace", "mode", "account_sid", "status", "error_code", "validated_at", "updated_at"]
    list_filter = ["mode", "status"]
    search_fields = ["workspace__name", "account_sid", "api_key_sid", "twiml_app_sid"]
    list_select_related = ["workspace"]
    # Secrets are never rendered; ops can only replace them (dialer.forms.TwilioConnectionAdminForm).
    exclude = ["auth_token", "api_key_secret"]
    readonly_fields = ["masked_auth_token", "created_at", "updated_at", "validated_at"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "workspace", "sid", "locality", "region", "is_primary", "created_at"]
    list_filter = ["is_primary", "iso_country"]
    search_fields = ["phone_number", "sid", "workspace__name"]
    list_select_related = ["workspace"]
