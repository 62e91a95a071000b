from django import forms
from django.core.exceptions import ValidationError


class SwitchWorkspaceForm(forms.Form):
    workspace_id = forms.IntegerField()


def apply_validation_error(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: next to its field when the form has it, else on top."""
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


class TwoFactorTokenForm(forms.Form):
    token = forms.CharField(
        label="Code", max_length=32, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
    )


class TwoFactorEnrolForm(forms.Form):
    device_id = forms.IntegerField(widget=forms.HiddenInput)
    token = forms.CharField(
        label="Code from the app", max_length=10, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class WorkspaceSecurityForm(forms.Form):
    require_two_factor = forms.BooleanField(
        required=False, label="Require two-factor sign-in for every member",
        help_text="Members without an authenticator app are asked to set one up the next time they open this workspace.",
    )
