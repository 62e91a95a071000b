"""Forms of the knowledge pages (validation only: the services write)."""
from django import forms
from django.conf import settings

from knowledge.extraction import ACCEPTED
from workspaces import outbound


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class TextSourceForm(forms.Form):
    title = forms.CharField(max_length=200)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}),
                           help_text="Markdown headings (# Returns) label the passages under them.")


class FileSourceForm(forms.Form):
    file = forms.FileField(help_text=f"{ACCEPTED}; at most {settings.KNOWLEDGE_MAX_FILE_BYTES // 1048576} MB.")
    title = forms.CharField(max_length=200, required=False, help_text="Empty: the file's name.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.KNOWLEDGE_MAX_FILE_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"{upload.name} is {upload.size / 1048576:.1f} MB: files can be at most "
                                        f"{limit / 1048576:.0f} MB. Split it, or upload the part the agent needs.")
        return upload


class UrlSourceForm(forms.Form):
    url = forms.CharField(label="Page URL", max_length=2000, help_text="Fetched now, then again on the schedule.")
    title = forms.CharField(max_length=200, required=False, help_text="Empty: the page's title.")
    refresh_hours = forms.TypedChoiceField(
        label="Fetch again", coerce=int, initial=24,
        choices=[(1, "every hour"), (6, "every 6 hours"), (24, "every day"), (168, "every week"), (0, "never")])

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        reason = outbound.url_refusal(url)
        if reason:
            raise forms.ValidationError(reason)
        return url


class TryForm(forms.Form):
    question = forms.CharField(max_length=500)


class AttachForm(forms.Form):
    agent = forms.IntegerField()
    used = forms.BooleanField(required=False)
    every_turn = forms.BooleanField(required=False)
