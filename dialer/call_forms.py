from django import forms

from .models import Call


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
