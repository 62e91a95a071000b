from django import forms


class SwitchWorkspaceForm(forms.Form):
    workspace_id = forms.IntegerField()
