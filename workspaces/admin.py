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


# Second-factor devices (issue 22.8): ops may see who has one, and delete it after a lost phone, but never see the
# TOTP key or a recovery code, nor make or re-key a device here (enrolment does that, in the user's own session).
# OTP_ADMIN_HIDE_SENSITIVE_DATA (settings) hides the key field and the tokens inline on change pages; without
# "Add" the add page that would show them is gone too.
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin  # noqa: E402
from django_otp.plugins.otp_static.models import StaticDevice  # noqa: E402
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402


class SecondFactorDeviceAdminMixin:
    def has_add_permission(self, request):
        return False

    def get_inline_instances(self, request, obj=None):
        return []  # the static device's tokens (recovery codes): never listed

    def get_readonly_fields(self, request, obj=None):
        editable = {"name", "confirmed"}  # ops may rename or disable; deleting the device is the lost-phone path
        fields = [field.name for field in self.model._meta.fields if field.name not in editable | {"key", "id"}]
        return list(dict.fromkeys([*super().get_readonly_fields(request, obj), *fields]))

    def get_list_display(self, request):
        return [name for name in super().get_list_display(request) if name != "qrcode_link"]


class SafeTOTPDeviceAdmin(SecondFactorDeviceAdminMixin, TOTPDeviceAdmin):
    def get_fieldsets(self, request, obj=None):
        return [(title, {**options, "fields": [f for f in options["fields"] if f != "key"]})
                for title, options in super().get_fieldsets(request, obj)]


class SafeStaticDeviceAdmin(SecondFactorDeviceAdminMixin, StaticDeviceAdmin):
    pass


for _model, _admin in ((TOTPDevice, SafeTOTPDeviceAdmin), (StaticDevice, SafeStaticDeviceAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)


from workspaces.models import AuthenticatorDevice  # noqa: E402


@admin.register(AuthenticatorDevice)
class AuthenticatorDeviceAdmin(SecondFactorDeviceAdminMixin, admin.ModelAdmin):
    """The authenticator apps (TOTP, key encrypted at rest): who has one, when it was used; never the key."""

    list_display = ["user", "name", "created_at", "last_used_at", "confirmed"]
    list_filter = ["confirmed", "created_at", "last_used_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    exclude = ["key"]
