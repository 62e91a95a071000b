"""Settings → Dialer forms: every field validated with a message next to it."""
import re

from django import forms
from django.core.validators import RegexValidator

from .models import TwilioConnection
from .numbering import InvalidNumber, country_of, to_e164

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
AUTH_TOKEN_RE = re.compile(r"^[0-9a-zA-Z]{32}$")
SEARCH_COUNTRIES = [("US", "United States"), ("CA", "Canada")]


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


class ByokForm(forms.Form):
    account_sid = forms.CharField(label="Account SID", max_length=64,
                                  widget=forms.TextInput(attrs={"placeholder": "AC…", "autocomplete": "off",
                                                                "spellcheck": "false"}))
    # Write-only: never rendered back; empty keeps the stored token.
    auth_token = forms.CharField(label="Auth Token", required=False, max_length=128, strip=True,
                                 widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, connection: TwilioConnection | None = None, **kwargs):
        self.connection = connection
        if connection is not None and connection.mode == TwilioConnection.Mode.BYOK and connection.account_sid:
            kwargs.setdefault("initial", {"account_sid": connection.account_sid})
        super().__init__(*args, **kwargs)
        if self.has_stored_token:
            self.fields["auth_token"].help_text = (
                f"Saved: {connection.masked_auth_token}. Leave empty to keep it, or enter a new one to replace it.")

    @property
    def has_stored_token(self) -> bool:
        c = self.connection
        return bool(c and c.mode == TwilioConnection.Mode.BYOK and c.auth_token)

    def clean_account_sid(self):
        return clean_account_sid(self.cleaned_data.get("account_sid"))

    def clean_auth_token(self):
        return clean_auth_token(self.cleaned_data.get("auth_token"))

    def clean(self):
        cleaned = super().clean()
        sid, token = cleaned.get("account_sid"), cleaned.get("auth_token")
        if sid and not token:
            if not self.has_stored_token:
                self.add_error("auth_token", "Enter the Auth Token.")
            elif self.connection.account_sid != sid:
                self.add_error("auth_token", "Enter the Auth Token of this new Account SID.")
        return cleaned


class NumberSearchForm(forms.Form):
    country = forms.ChoiceField(choices=SEARCH_COUNTRIES, initial="US")
    area_code = forms.CharField(label="Area code", max_length=3, min_length=1,
                                widget=forms.TextInput(attrs={"placeholder": "512", "inputmode": "numeric",
                                                              "size": 4}))
    contains = forms.CharField(label="Contains (optional)", required=False, max_length=7,
                               validators=[RegexValidator(r"^[0-9]+$", "Use digits only, e.g. 55.")],
                               widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 8}))

    def clean_area_code(self):
        value = (self.cleaned_data.get("area_code") or "").strip()
        if not re.fullmatch(r"[2-9][0-9]{2}", value) or value[1:] == "11":
            raise forms.ValidationError("Enter a 3-digit area code, e.g. 512 for Austin, TX.")
        return value


class ProvisionForm(forms.Form):
    phone_number = forms.CharField(max_length=20)
    locality = forms.CharField(max_length=64, required=False)
    region = forms.CharField(max_length=64, required=False)

    def clean_phone_number(self):
        try:
            value = to_e164(self.cleaned_data.get("phone_number"))
        except InvalidNumber as exc:
            raise forms.ValidationError(str(exc)) from None
        if country_of(value) not in {"US", "CA"}:
            raise forms.ValidationError("Only US and Canadian numbers can be provisioned here.")
        return value


class CallerIdAddForm(forms.Form):
    phone_number = forms.CharField(label="Phone number", max_length=32,
                                   widget=forms.TextInput(attrs={"placeholder": "+15125550100", "type": "tel"}))
    friendly_name = forms.CharField(label="Name (optional)", max_length=64, required=False)

    def __init__(self, *args, default_country: str = "US", **kwargs):
        self.default_country = default_country
        super().__init__(*args, **kwargs)

    def clean_phone_number(self):
        try:
            return to_e164(self.cleaned_data.get("phone_number"), default_country=self.default_country)
        except InvalidNumber as exc:
            raise forms.ValidationError(str(exc)) from None


class LocalPresenceForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Local presence")


class TwilioConnectionAdminForm(forms.ModelForm):
    """Admin change form: secrets are never shown, only replaced."""

    new_auth_token = forms.CharField(label="Replace Auth Token", required=False,
                                     widget=forms.PasswordInput(render_value=False),
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
