"""Forms of the campaigns pages."""
from __future__ import annotations

from django import forms

from campaigns.models import Campaign, ContactList

WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]


class ContactListForm(forms.Form):
    name = forms.CharField(max_length=120)


class ImportForm(forms.Form):
    """Step 1 uploads a file (preview); step 2 posts the same text back with `confirm` to import it."""

    file = forms.FileField(required=False, help_text="A CSV with a phone column; other columns become fields.")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"hidden": True, "rows": 1}))

    # The preview posts the text back to import it: it must fit in Django's request body limit (2.5 MB).
    MAX_BYTES = 2 * 1024 * 1024

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > self.MAX_BYTES:
                raise forms.ValidationError("The file is larger than 2 MB: split it into several imports.")
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text: save it as CSV UTF-8.") from None
        if not data.get("text"):
            raise forms.ValidationError("Choose a CSV file.")
        return data


class CampaignForm(forms.ModelForm):
    window_days = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, initial=[1, 2, 3, 4, 5],
                                                 widget=forms.CheckboxSelectMultiple,
                                                 help_text="In each contact's local time.")
    handover_reps = forms.TypedMultipleChoiceField(
        label="Reps who take qualified contacts live", required=False, coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text="When the agent hands a contact over to the dialer reps (a \"Dialer reps\" handover action), "
                  "these reps' browser dialers ring; none ticked: the action's own team.")

    class Meta:
        model = Campaign
        fields = ["name", "contact_list", "worked_by", "reps", "agent", "environment", "version_mode", "caller_id_rule",
                  "caller_id", "window_days", "window_start", "window_end", "max_concurrent", "max_attempts",
                  "retry_no_answer_minutes", "retry_busy_minutes", "retry_voicemail_minutes", "starts_at", "ends_at",
                  "handover_reps"]
        widgets = {"window_start": forms.TimeInput(attrs={"type": "time"}),
                   "window_end": forms.TimeInput(attrs={"type": "time"}),
                   "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
                   "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}

    def __init__(self, *args, workspace, **kwargs):
        from agents.models import Agent, Environment

        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["contact_list"].queryset = ContactList.objects.filter(workspace=workspace)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace)
        self.fields["environment"].queryset = Environment.objects.filter(workspace=workspace)
        from django.contrib.auth import get_user_model

        self.fields["reps"].queryset = get_user_model().objects.filter(memberships__workspace=workspace).order_by(
            "username")
        self.fields["reps"].widget = forms.CheckboxSelectMultiple()
        self.fields["reps"].help_text = "Worked by reps: the team (none ticked: every member of the workspace)."
        from workspaces.models import Membership

        self.fields["handover_reps"].choices = [
            (m.user_id, m.user.get_full_name() or m.user.get_username())
            for m in Membership.objects.filter(workspace=workspace).select_related("user").order_by("user_id")]
        self.fields["window_start"].initial = "09:00"
        self.fields["window_end"].initial = "17:00"

    def clean(self):
        from telephony import numbering
        from telephony.selectors import max_concurrent_agent_calls
        from telephony.services import NoCallerId, caller_id_choose

        data = super().clean()
        if data.get("worked_by") == Campaign.WorkedBy.AGENT:
            if not data.get("agent"):
                self.add_error("agent", "Choose the agent that calls the contacts.")
            if not data.get("environment"):
                self.add_error("environment", "Choose the environment the agent runs in.")
        if data.get("window_start") and data.get("window_end") and data["window_start"] >= data["window_end"]:
            self.add_error("window_end", "The window must end after it starts.")
        if data.get("starts_at") and data.get("ends_at") and data["starts_at"] >= data["ends_at"]:
            self.add_error("ends_at", "The campaign must end after it starts.")
        limit = max_concurrent_agent_calls(workspace=self.workspace)
        if data.get("max_concurrent") is not None and not 1 <= data["max_concurrent"] <= limit:
            self.add_error("max_concurrent", f"Between 1 and {limit} (the workspace's limit of agent calls).")
        if data.get("max_attempts") is not None and not 1 <= data["max_attempts"] <= 10:
            self.add_error("max_attempts", "Between 1 and 10 attempts.")
        if data.get("caller_id_rule") == Campaign.CallerIdRule.FIXED:
            try:
                number = numbering.to_e164(data.get("caller_id") or "",
                                           default_country=self.workspace.default_country or "US")
                data["caller_id"] = caller_id_choose(workspace=self.workspace, to_number=number,
                                                     requested=number).phone_number
            except (numbering.InvalidNumber, NoCallerId) as exc:
                self.add_error("caller_id", f"{exc} Choose one of the workspace's numbers or verified caller IDs.")
        return data
