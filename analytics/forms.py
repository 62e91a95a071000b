from django import forms

from agents.models import Agent, AgentVersion

PERIODS = [(7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days")]


class StudioFilterForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), empty_label=None)
    a = forms.ModelChoiceField(queryset=AgentVersion.objects.none(), required=False, label="Version",
                               empty_label="Newest with calls")
    b = forms.ModelChoiceField(queryset=AgentVersion.objects.none(), required=False, label="Compare with",
                               empty_label="The one before")
    days = forms.TypedChoiceField(choices=PERIODS, coerce=int, initial=30, label="Period")

    def __init__(self, *args, workspace, agent=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace).order_by("name")
        versions = AgentVersion.objects.filter(agent=agent, number__isnull=False).order_by("-number") if agent \
            else AgentVersion.objects.none()
        self.fields["a"].queryset = self.fields["b"].queryset = versions
        self.fields["a"].label_from_instance = self.fields["b"].label_from_instance = lambda v: v.label


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(choices=PERIODS, coerce=int, initial=30, label="Period")
