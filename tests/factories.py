import secrets

import factory
from django.contrib.auth import get_user_model

from telephony.models import PhoneNumber, TwilioConnection
from workspaces.models import Membership, Workspace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        # Save the password set above explicitly (factory_boy's implicit save is deprecated and warns).
        if create and results:
            instance.save(update_fields=["password"])


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


def account_sid() -> str:
    return "AC" + secrets.token_hex(16)


class TwilioConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwilioConnection

    workspace = factory.SubFactory(WorkspaceFactory)
    mode = TwilioConnection.Mode.BYOK
    account_sid = factory.LazyFunction(account_sid)
    auth_token = factory.LazyFunction(lambda: secrets.token_hex(16))
    status = TwilioConnection.Status.CONNECTED


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    workspace = factory.SubFactory(WorkspaceFactory)
    sid = factory.LazyFunction(lambda: "PN" + secrets.token_hex(16))
    phone_number = factory.Sequence(lambda n: f"+1512555{n:04d}")
    locality = "Austin"
    region = "TX"
    iso_country = "US"
    capabilities = factory.LazyFunction(lambda: {"voice": True, "sms": True, "mms": False})
