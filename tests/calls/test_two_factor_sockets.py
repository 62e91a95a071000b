"""Browser sockets owe the same second factor as pages: a password-only session of a user with a device (or
of a member whose workspace requires two-factor sign-in) is refused like a logged-out browser."""
import pytest
from django.contrib.sessions.backends.cached_db import SessionStore  # settings.SESSION_ENGINE
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from websockets.exceptions import InvalidStatus

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Membership

from .conftest import browser_ws, cookie_for, run

pytestmark = pytest.mark.django_db(transaction=True)


def live_status(asgi_server, cookie) -> int:
    async def scenario():
        try:
            async with browser_ws(asgi_server, "/v1/studio/calls/live", cookie):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return run(scenario())


def session_of(cookie: str):
    return SessionStore(session_key=cookie.split("=", 1)[1])


def test_a_password_only_session_of_a_user_with_a_device_is_refused(asgi_server):
    user = UserFactory(username="dee")
    MembershipFactory(workspace=WorkspaceFactory(), user=user, role=Membership.Role.ADMIN)
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    cookie = cookie_for(user)
    assert live_status(asgi_server, cookie) == 403
    session = session_of(cookie)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # what the code step stores
    session.save()
    assert live_status(asgi_server, cookie) == 101


def test_a_member_without_a_device_is_refused_where_the_workspace_requires_it(asgi_server):
    workspace = WorkspaceFactory(require_two_factor=True)
    user = UserFactory(username="eve")
    MembershipFactory(workspace=workspace, user=user)
    assert live_status(asgi_server, cookie_for(user)) == 403
    workspace.require_two_factor = False
    workspace.save()
    assert live_status(asgi_server, cookie_for(user)) == 101
