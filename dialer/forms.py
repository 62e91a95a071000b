"""Dialer forms (Settings → Dialer, the call log's filters): every field validated with a message next to it."""
import re

from django import forms
from django.core.validators import RegexValidator

from dialer.models import Call
from telephony.forms import clean_account_sid, clean_auth_token
from telephony.models import TwilioConnection
from telephony.numbering import InvalidNumber, country_of, to_e164

SEARCH_COUNTRIES = [("US", "United States"), ("CA", "Canada")]


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
    area_code = forms.CharField(label="Area code", max_length=8,
                                widget=forms.TextInput(attrs={"placeholder": "512", "inputmode": "numeric",
                                                              "size": 4}))
    contains = forms.CharField(label="Contains (optional)", required=False, max_length=7,
                               validators=[RegexValidator(r"^[0-9]+$", "Use digits only, e.g. 55.")],
                               widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 8}))

    AREA_CODE_HINTS = {"US": "Enter a 3-digit US area code, e.g. 512 for Austin, TX.",
                       "CA": "Enter a 3-digit Canadian area code, e.g. 416 for Toronto, ON."}

    def clean_area_code(self):
        value = (self.cleaned_data.get("area_code") or "").strip()
        if not re.fullmatch(r"[2-9][0-9]{2}", value) or value[1:] == "11":
            country = self.data.get("country") or "US"
            raise forms.ValidationError(self.AREA_CODE_HINTS.get(country, self.AREA_CODE_HINTS["US"]))
        return value


class ProvisionForm(forms.Form):
    phone_number = forms.CharField(max_length=20)
    locality = forms.CharField(max_length=64, required=False)
    region = forms.CharField(max_length=64, required=False)
    # Set by the confirmation page's button: without it the view asks to confirm first (nothing is bought).
    confirmed = forms.BooleanField(required=False)

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



class CallLogFilterForm(forms.Form):
    """Call log filters; `user` only accepts members of the workspace (anything else is invalid)."""

    user = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Rep")
    direction = forms.ChoiceField(required=False, choices=[("", "Any direction"), *Call.Direction.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Call.Status.choices])

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "Anyone")] + [
            (m.user_id, m.user.get_full_name() or m.user.get_username()) for m in members
        ]

    def foreign_user(self) -> bool:
        """A user id that is a number but not a member of this workspace (another workspace's id)."""
        raw = self.data.get("user", "")
        return bool(raw) and "user" in self.errors and str(raw).isdigit()
