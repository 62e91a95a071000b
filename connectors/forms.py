from django import forms

from agents.models import Agent, AgentVersion, Environment
from connectors.models import PhoneConnector


class PhoneConnectorForm(forms.Form):
    type = forms.ChoiceField(choices=PhoneConnector.Type.choices, initial=PhoneConnector.Type.TWILIO)
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), help_text="Which agent handles the calls.")
    environment = forms.ModelChoiceField(queryset=Environment.objects.none(), empty_label=None)
    version_mode = forms.ChoiceField(
        choices=PhoneConnector.VersionMode.choices, widget=forms.RadioSelect, initial=PhoneConnector.VersionMode.PUBLISHED,
        help_text="Published: always the latest published version. Draft: the current draft. Pinned: a chosen version.",
    )
    pinned_version = forms.ModelChoiceField(queryset=AgentVersion.objects.none(), required=False,
                                            label="Pinned version", help_text="Only for the Pinned mode.")
    name = forms.CharField(max_length=120, required=False, help_text="Optional label.")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace).order_by("name")
        self.fields["environment"].queryset = Environment.objects.filter(workspace=workspace).order_by("id")
        self.fields["pinned_version"].queryset = (
            AgentVersion.objects.filter(agent__workspace=workspace, state=AgentVersion.State.PUBLISHED)
            .select_related("agent").order_by("agent__name", "-number")
        )
        self.fields["pinned_version"].label_from_instance = lambda v: f"{v.agent.name} · {v.label}"

    def clean(self):
        data = super().clean()
        agent, mode, pinned = data.get("agent"), data.get("version_mode"), data.get("pinned_version")
        if mode == PhoneConnector.VersionMode.PINNED:
            if pinned is None:
                self.add_error("pinned_version", "Choose the version to pin.")
            elif agent is not None and pinned.agent_id != agent.pk:
                self.add_error("pinned_version", f"Choose a published version of {agent}.")
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {"agent": d["agent"], "environment": d["environment"], "version_mode": d["version_mode"],
                "pinned_version": d.get("pinned_version"), "name": d.get("name", "")}


class AttachNumberForm(forms.Form):
    phone_number = forms.ModelChoiceField(queryset=None, label="Twilio number", empty_label="Pick a number…")

    def __init__(self, *args, workspace, **kwargs):
        from telephony.models import PhoneNumber

        super().__init__(*args, **kwargs)
        numbers = PhoneNumber.objects.filter(workspace=workspace).select_related("connector_link").order_by(
            "phone_number")
        field = self.fields["phone_number"]
        field.queryset = numbers
        dialer = [n.pk for n in numbers if not hasattr(n, "connector_link")]

        def label(number):
            if dialer == [number.pk]:
                return f"{number.phone_number} (the dialer's only number: calls to the dialer would stop)"
            return number.phone_number

        field.label_from_instance = label
