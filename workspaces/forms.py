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
