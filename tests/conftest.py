import pytest
from django.core.cache import cache
from django.test import Client

from workspaces.models import Membership

pytest_plugins = ["tests.fixtures_twilio", "tests.fixtures_browser", "tests.fixtures_celery"]

from .factories import MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Other Co")


@pytest.fixture
def admin_user(workspace):
    user = UserFactory(username="alice")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def member_user(workspace):
    user = UserFactory(username="bob")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def other_admin_user(other_workspace):
    user = UserFactory(username="mallory")
    MembershipFactory(workspace=other_workspace, user=user, role=Membership.Role.ADMIN)
    return user


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def member_client(member_user):
    return _client_for(member_user)


@pytest.fixture
def other_client(other_admin_user):
    """An admin of another workspace: every cross-workspace test uses this one."""
    return _client_for(other_admin_user)
