"""Forms of Studio's calls pages: "Call a number" (one agent call, calls.services.outbound)."""
from __future__ import annotations

import json

from django import forms

from agents.models import Agent, AgentVersion, Environment


class CallPlaceForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none())
    environment = forms.ModelChoiceField(queryset=Environment.objects.none())
    version_mode = forms.ChoiceField(label="Version", choices=[("published", "Newest published"),
                                                               ("draft", "Draft"), ("pinned", "A published version")])
    pinned_version = forms.ModelChoiceField(queryset=AgentVersion.objects.none(), required=False,
                                            label="Pinned version")
    to = forms.CharField(label="Number to call", max_length=32,
                         widget=forms.TextInput(attrs={"placeholder": "+15125550123", "autocomplete": "off"}))
    from_number = forms.ChoiceField(label="Call from", required=False)
    variables = forms.CharField(
        required=False, label="Variables for this call", widget=forms.Textarea(attrs={"rows": 4}),
        help_text='One per line, name=value (e.g. first_name=Jane), or a JSON object. Used as {first_name} in '
                  "the instructions, greeting and voicemail.")

    def __init__(self, *args, workspace, **kwargs):
        from telephony.selectors import caller_ids_for_dialer

        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace).order_by("name")
        self.fields["environment"].queryset = Environment.objects.filter(workspace=workspace)
        self.fields["pinned_version"].queryset = AgentVersion.objects.filter(
            agent__workspace=workspace, state=AgentVersion.State.PUBLISHED).select_related("agent")
        self.fields["from_number"].choices = [("", "The default caller ID")] + [
            (c.phone_number, c.label) for c in caller_ids_for_dialer(workspace=workspace)]

    def clean_variables(self):
        raw = (self.cleaned_data.get("variables") or "").strip()
        if not raw:
            return {}
        if raw.startswith("{"):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise forms.ValidationError("Write a JSON object, or name=value lines.") from exc
            if not isinstance(value, dict):
                raise forms.ValidationError("Write a JSON object, or name=value lines.")
            return value
        out = {}
        for line in raw.splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Write name=value (not “{line[:40]}”).")
            out[name.strip()] = value.strip()
        return out
