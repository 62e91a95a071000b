"""Deploy checks for the Twilio settings (`manage.py check --deploy`)."""
from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_twilio_settings(app_configs=None, **kwargs):
    issues = []
    base_url = getattr(settings, "TWILIO_API_BASE_URL", "")
    if base_url:
        issues.append(Warning(
            f"TWILIO_API_BASE_URL is set ({base_url}): every Twilio REST call goes there instead of to Twilio.",
            hint="Leave it empty in production; it is for the local Twilio sandbox and the contract tests.",
            id="dialer.W001",
        ))
    public = getattr(settings, "PUBLIC_BASE_URL", "")
    if not public.startswith("https://"):
        issues.append(Warning(
            f"PUBLIC_BASE_URL ({public or 'empty'}) is not an https:// URL: Twilio's webhooks and their signature "
            "check are built from it.",
            hint="Set PUBLIC_BASE_URL to the public https://host[:port] of the app.",
            id="dialer.W002",
        ))
    return issues
