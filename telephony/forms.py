"""Twilio credentials as forms check them (Settings → Dialer and the admin)."""
import re

from django import forms

from telephony.models import TwilioConnection

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
AUTH_TOKEN_RE = re.compile(r"^[0-9a-zA-Z]{32}$")


def clean_account_sid(value: str) -> str:
    value = (value or "").strip()
    if not ACCOUNT_SID_RE.match(value):
        raise forms.ValidationError(
            "An Account SID is \"AC\" followed by 32 hexadecimal characters (find it on the Twilio Console dashboard).")
    return "AC" + value[2:].lower()


def clean_auth_token(value: str) -> str:
    value = (value or "").strip()
    if value and not AUTH_TOKEN_RE.match(value):
        raise forms.ValidationError("An Auth Token is 32 letters and digits (click the eye icon in the Twilio Console).")
    return value


class TwilioConnectionAdminForm(forms.ModelForm):
    """Admin change form: secrets are never shown, only replaced."""

    new_auth_token = forms.CharField(label="Replace Auth Token", required=False,
                                     widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                                     help_text="Leave empty to keep the stored token.")

    class Meta:
        model = TwilioConnection
        exclude = ["auth_token", "api_key_secret"]

    def clean_account_sid(self):
        value = self.cleaned_data.get("account_sid")
        return clean_account_sid(value) if value else value

    def clean_new_auth_token(self):
        return clean_auth_token(self.cleaned_data.get("new_auth_token"))

    def save(self, commit=True):
        instance = super().save(commit=False)
        if self.cleaned_data.get("new_auth_token"):
            instance.auth_token = self.cleaned_data["new_auth_token"]
        if commit:
            instance.save()
            self.save_m2m()
        return instance
