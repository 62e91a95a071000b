from django import forms
from django.core.exceptions import ValidationError


class SwitchWorkspaceForm(forms.Form):
    workspace_id = forms.IntegerField()


class WorkspaceCreateForm(forms.Form):
    """Staff create a workspace in the app: its name and its first admin (an existing user)."""

    name = forms.CharField(max_length=120)
    admin_username = forms.CharField(label="First admin (username)", max_length=150,
                                     help_text="An existing user; they become the workspace's admin.")
    default_country = forms.CharField(label="Default country", max_length=2, initial="US",
                                      help_text="ISO code used to read numbers typed without a country code.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Enter a name.")
        return name

    def clean_admin_username(self):
        from django.contrib.auth import get_user_model

        username = self.cleaned_data["admin_username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(f"No active user named {username}: create the user first (Django admin → Users).")
        return user

    def clean_default_country(self):
        code = self.cleaned_data["default_country"].strip().upper()
        if len(code) != 2 or not code.isalpha():
            raise ValidationError("Enter a 2-letter country code, e.g. US.")
        return code


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
