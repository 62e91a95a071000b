from django.contrib import admin

from telephony.forms import TwilioConnectionAdminForm
from telephony.models import (
    CallerId,
    DoNotCallNumber,
    MissedCall,
    NumberPurchase,
    OutboundCallPolicy,
    PhoneNumber,
    TwilioConnection,
)
from telephony.selectors import phone_system_status_invalidate


@admin.register(TwilioConnection)
class TwilioConnectionAdmin(admin.ModelAdmin):
    list_display = ["workspace", "mode", "account_sid", "status", "error_code", "validated_at", "updated_at"]
    list_filter = ["mode", "status"]
    search_fields = ["workspace__name", "account_sid", "api_key_sid", "twiml_app_sid"]
    list_select_related = ["workspace"]
    # Secrets are never rendered; ops can only replace them (dialer.forms.TwilioConnectionAdminForm).
    form = TwilioConnectionAdminForm
    exclude = ["auth_token", "api_key_secret"]
    # Status, Account SID and API key come from Twilio and the validation task: shown, not edited here (replace
    # the token below, then "Check the credentials with Twilio now").
    readonly_fields = ["status", "account_sid", "api_key_sid", "masked_auth_token", "masked_api_key_secret",
                       "created_at", "updated_at", "validated_at"]
    # Which workspace, which mode and the TwiML app Callwell made for it: never moved by hand (issue 22.8).
    readonly_on_change = ["workspace", "mode", "twiml_app_sid"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + self.readonly_on_change if obj is not None else fields

    @admin.display(description="API key secret")
    def masked_api_key_secret(self, obj):
        from workspaces.fields import mask_secret

        return mask_secret(obj.api_key_secret)

    actions = ["check_credentials_now"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        phone_system_status_invalidate(workspace_id=obj.workspace_id)

    @admin.action(description="Check the credentials with Twilio now (e.g. after replacing a token)")
    def check_credentials_now(self, request, queryset):
        from telephony.services import connection_revalidate

        count = 0
        for connection in queryset.select_related("workspace"):
            if connection.has_credentials or connection.mode == TwilioConnection.Mode.HOSTED:
                connection_revalidate(workspace=connection.workspace)
                count += 1
        self.message_user(request, f"Queued a credentials check for {count} connection(s).")


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "workspace", "sid", "locality", "region", "is_primary", "created_at"]
    list_filter = ["is_primary", "iso_country"]
    search_fields = ["phone_number", "sid", "workspace__name"]
    list_select_related = ["workspace"]

    def get_readonly_fields(self, request, obj=None):
        # The number Twilio sold to this workspace: its workspace, SID and number never change by hand.
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["workspace", "sid", "phone_number"] if obj is not None else fields


@admin.register(CallerId)
class CallerIdAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "workspace", "kind", "is_default", "region", "verified_at", "created_at"]
    list_filter = ["kind", "is_default"]
    search_fields = ["phone_number", "workspace__name", "friendly_name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["phone_number_ref"]


@admin.register(NumberPurchase)
class NumberPurchaseAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "workspace", "state", "attempts", "lease_until", "updated_at"]
    list_filter = ["state"]
    search_fields = ["phone_number", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["number"]

    def has_add_permission(self, request):
        return False  # made by a purchase in Settings → Numbers, never by hand


# Browser-dialer calls (issue 4): read-mostly, for support.


@admin.register(DoNotCallNumber)
class DoNotCallNumberAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "workspace", "reason", "created_at")
    search_fields = ("phone_number",)


@admin.register(OutboundCallPolicy)
class OutboundCallPolicyAdmin(admin.ModelAdmin):
    list_display = ("workspace", "max_concurrent_agent_calls", "updated_at")
@admin.register(MissedCall)
class MissedCallAdmin(admin.ModelAdmin):
    """Calls that came while the database was down (recorded from the outage spool): read-only."""

    list_display = ["received_at", "workspace", "call_sid", "from_number", "to_number", "path", "recorded_at"]
    search_fields = ["call_sid", "from_number", "to_number", "workspace__name"]
    list_select_related = ["workspace"]
    readonly_fields = [f.name for f in MissedCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
