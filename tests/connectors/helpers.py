import xml.etree.ElementTree as ET
from urllib.parse import urlencode

from django.conf import settings
from twilio.request_validator import RequestValidator

from tests.factories import TwilioConnectionFactory


def connection_for(workspace):
    return TwilioConnectionFactory(workspace=workspace)


def call_params(connection, **overrides) -> dict:
    params = {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": connection.account_sid,
        "From": "+15125550100",
        "To": "+15125550199",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


def signed_get(client, path, params, token, *, signature=None):
    query = urlencode(params)
    url = f"{settings.PUBLIC_BASE_URL}{path}?{query}"
    sig = signature if signature is not None else RequestValidator(token).compute_signature(url, {})
    headers = {"HTTP_X_TWILIO_SIGNATURE": sig} if sig else {}
    return client.get(f"{path}?{query}", **headers)


def signed_post(client, path, params, token, *, signature=None):
    url = f"{settings.PUBLIC_BASE_URL}{path}"
    sig = signature if signature is not None else RequestValidator(token).compute_signature(url, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": sig} if sig else {}
    return client.post(path, params, **headers)


def twiml(response) -> ET.Element:
    assert response["Content-Type"].startswith("text/xml"), response["Content-Type"]
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return root
