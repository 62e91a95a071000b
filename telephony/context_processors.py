from telephony.selectors import phone_system_status
from telephony.services import sandbox_active


def phone_system(request):
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return {}
    return {"phone_system": phone_system_status(workspace_id=workspace.pk), "twilio_sandbox": sandbox_active()}
