from django.contrib import admin

from campaigns.models import Campaign, CampaignAttempt, CampaignContact, Contact, ContactList


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "created_at")
    list_filter = ("workspace",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "name", "contact_list", "time_zone", "do_not_call")
    search_fields = ("phone_number", "name")
    raw_id_fields = ("contact_list",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "status", "worked_by", "max_concurrent", "created_at")
    list_filter = ("status", "worked_by")
    raw_id_fields = ("contact_list", "agent", "environment")


@admin.register(CampaignContact)
class CampaignContactAdmin(admin.ModelAdmin):
    list_display = ("campaign", "contact", "state", "attempts", "next_attempt_at", "finished_at")
    list_filter = ("state",)
    raw_id_fields = ("campaign", "contact")


@admin.register(CampaignAttempt)
class CampaignAttemptAdmin(admin.ModelAdmin):
    list_display = ("campaign_contact", "number", "outcome", "started_at", "ended_at")
    raw_id_fields = ("campaign_contact", "call_session")
