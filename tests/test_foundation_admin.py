"""Django admin for ops: every registered model (of every app, including ones added later) renders its
changelist and change page for a superuser, never shows a secret (neither plaintext nor ciphertext), and
its changelist does not grow queries with its rows."""
import datetime
import decimal
import itertools
import re
import uuid

import pytest
from django.contrib import admin
from django.db import IntegrityError, connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory
from workspaces.fields import StrictEncryptedMixin

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"workspaces", "dialer", "agents", "connectors", "knowledge"}
SECRET_NAME = re.compile(r"(secret|token|password|passwd|nonce|api_key$|private_key)", re.I)
NOT_SECRET_NAME = re.compile(r"(_sid|_at|_ttl|_url|_count|_id|_hash|_digest)$", re.I)
_counter = itertools.count(1)

REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def is_secret_field(field) -> bool:
    if isinstance(field, StrictEncryptedMixin):
        return True
    return (isinstance(field, (models.CharField, models.TextField)) and not field.choices
            and bool(SECRET_NAME.search(field.name)) and not NOT_SECRET_NAME.search(field.name)
            and field.model._meta.label != "auth.User")


def secret_value(field) -> str:
    n = next(_counter)
    value = f"SeCrEtVaLuE{n:04d}{uuid.uuid4().hex}"
    limit = getattr(field, "max_length", None) or 64
    return value[: min(limit, 48)]


def field_value(field, secrets_out: list, depth: int):
    n = next(_counter)
    if is_secret_field(field):
        value = secret_value(field)
        secrets_out.append(value)
        return value
    if field.choices:
        return field.choices[0][0] if not isinstance(field.choices[0][1], (list, tuple)) else field.choices[0][1][0][0]
    if isinstance(field, (models.ForeignKey, models.OneToOneField)):
        return build(field.related_model, secrets_out, depth + 1)
    if isinstance(field, models.EmailField):
        return f"ops{n}@example.test"
    if isinstance(field, models.URLField):
        return f"https://example.test/{n}"
    if isinstance(field, models.SlugField):
        return f"slug-{n}"
    if isinstance(field, (models.CharField, models.TextField)):
        name = field.name
        if "phone" in name or "number" in name or name in {"from_number", "to_number", "caller", "destination"}:
            value = f"+1512555{n % 10000:04d}"
        elif name.endswith("sid"):
            value = "XX" + uuid.uuid4().hex
        else:
            value = f"{name}-{n}"
        return value[: field.max_length] if field.max_length else value
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, (models.IntegerField, models.FloatField)):
        return 1
    if isinstance(field, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return datetime.date.today()
    if isinstance(field, models.TimeField):
        return datetime.time(12, 0)
    if isinstance(field, models.DurationField):
        return datetime.timedelta(seconds=30)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, models.BinaryField):
        return b"x"
    if isinstance(field, models.FileField):
        return f"file-{n}.txt"
    raise NotImplementedError(f"no test value for {field!r}")


def build(model, secrets_out: list, depth: int = 0):
    """A saved instance with every required field set, and EVERY secret field set to a known value."""
    if model._meta.label == "auth.User":
        return UserFactory()
    if depth > 6:
        raise RecursionError(model)
    kwargs = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if is_secret_field(field):
            kwargs[field.name] = field_value(field, secrets_out, depth)
            continue
        if field.has_default() or field.null:
            continue
        if field.blank and isinstance(field, (models.CharField, models.TextField)):
            continue
        kwargs[field.name] = field_value(field, secrets_out, depth)
    with transaction.atomic():
        return model.objects.create(**kwargs)


def raw_values(obj, fields) -> list[str]:
    """What the database stores for the secret fields (ciphertext for encrypted ones)."""
    out = []
    with connection.cursor() as cursor:
        for field in fields:
            cursor.execute(f"SELECT {connection.ops.quote_name(field.column)} FROM "
                           f"{connection.ops.quote_name(obj._meta.db_table)} WHERE {obj._meta.pk.column} = %s",
                           [obj.pk])
            value = cursor.fetchone()[0]
            if value:
                out.append(str(value))
    return out


@pytest.fixture
def superuser_client(client):
    user = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model,model_admin", REGISTRY, ids=[m._meta.label for m, _ in REGISTRY])
def test_admin_pages_render_and_never_show_secrets(superuser_client, model, model_admin):
    secrets: list[str] = []
    try:
        obj = build(model, secrets)
    except (IntegrityError, NotImplementedError, RecursionError, ValueError) as exc:
        pytest.fail(f"could not build a {model._meta.label} for the admin test: {exc!r}")
    secret_fields = [f for f in model._meta.concrete_fields if is_secret_field(f)]
    hidden = secrets + raw_values(obj, secret_fields)

    pages = [url(model, "changelist"), url(model, "change", obj.pk), url(model, "changelist") + "?q=a",
             url(model, "add")]
    for page in pages:
        response = superuser_client.get(page)
        if page.endswith("/add/") and response.status_code == 403:
            continue  # models ops cannot add by hand
        assert response.status_code == 200, f"{page}: HTTP {response.status_code}"
        html = response.content.decode()
        for value in hidden:
            assert value not in html, f"{page} shows the secret of {model._meta.label}"
            assert value[:16] not in html, f"{page} shows part of a secret of {model._meta.label}"


@pytest.mark.parametrize("model,model_admin", [r for r in REGISTRY if r[0]._meta.app_label in PROJECT_APPS],
                         ids=[m._meta.label for m, _ in REGISTRY if m._meta.app_label in PROJECT_APPS])
def test_project_admins_are_useful_for_ops(model, model_admin):
    assert tuple(model_admin.list_display) != ("__str__",), "set list_display"
    assert model_admin.search_fields, "set search_fields"
    fk_columns = [name for name in model_admin.list_display
                  if isinstance(name, str) and name in {f.name for f in model._meta.concrete_fields}
                  and model._meta.get_field(name).is_relation]
    if fk_columns:
        assert model_admin.list_select_related, f"list_select_related for {fk_columns}"


@pytest.mark.parametrize("model,model_admin", [r for r in REGISTRY if r[0]._meta.app_label in PROJECT_APPS],
                         ids=[m._meta.label for m, _ in REGISTRY if m._meta.app_label in PROJECT_APPS])
def test_changelist_queries_do_not_grow_with_rows(superuser_client, model, model_admin):
    changelist = url(model, "changelist")
    build(model, [])
    superuser_client.get(changelist)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as one:
        assert superuser_client.get(changelist).status_code == 200
    for _ in range(4):
        build(model, [])
    with CaptureQueriesContext(connection) as five:
        assert superuser_client.get(changelist).status_code == 200
    assert len(five) <= len(one) + 1, (
        f"{model._meta.label} changelist: {len(one)} queries for 1 row, {len(five)} for 5 (N+1: list_select_related?)"
    )


def test_the_secret_detector_catches_an_admin_that_shows_a_secret(rf, workspace):
    """Negative control: an admin without `exclude` would render the token, and this test module would see it."""
    from telephony.admin import TwilioConnectionAdmin
    from telephony.models import TwilioConnection

    class LeakyAdmin(TwilioConnectionAdmin):
        exclude = None
        readonly_fields = ["auth_token"]

    secrets: list[str] = []
    obj = build(TwilioConnection, secrets)
    request = rf.get("/")
    request.user = UserFactory(username="ops2", is_staff=True, is_superuser=True)
    request.session, request._messages = {}, None
    html = LeakyAdmin(TwilioConnection, admin.site).change_view(request, str(obj.pk)).render().content.decode()
    assert any(value in html for value in secrets)
