from django import forms

from webhooks.models import EventType
from workspaces import outbound


class EndpointForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https",
                         help_text="Where we POST the events (https).")
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=EventType.values)
    description = forms.CharField(max_length=120, required=False)

    def clean_url(self):
        url = self.cleaned_data["url"]
        reason = outbound.url_refusal(url)
        if reason:
            raise forms.ValidationError(reason)
        return url
