from base64 import b32encode

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from workspaces import services
from workspaces.decorators import workspace_admin_required, workspace_member_required
from workspaces.forms import (
    SwitchWorkspaceForm,
    TwoFactorEnrolForm,
    TwoFactorTokenForm,
    WorkspaceCreateForm,
    WorkspaceSecurityForm,
)
from workspaces.middleware import SESSION_KEY, TWO_FACTOR_HAS_DEVICE_KEY, two_factor_verified
from workspaces.selectors import audit_entries, memberships_for_user


@workspace_member_required
def home(request):
    return render(request, "workspaces/home.html")


@require_GET
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@require_POST
@login_required
def switch_workspace(request):
    form = SwitchWorkspaceForm(request.POST)
    if not form.is_valid():
        raise Http404
    membership = memberships_for_user(user=request.user).filter(workspace_id=form.cleaned_data["workspace_id"]).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    return redirect("home")


def _safe_next(request, default: str = "home") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return resolve_url(default)


@login_required
def two_factor_verify(request):
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    if two_factor_verified(request):
        return redirect(_safe_next(request))
    if not user_has_device(request.user):
        # The device was removed (e.g. by an admin after a lost phone): nothing to enter; the workspace's
        # requirement, if any, sends the user to enrolment from the next page on.
        request.session[TWO_FACTOR_HAS_DEVICE_KEY] = False
        return redirect(_safe_next(request))
    form = TwoFactorTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.two_factor_verify(user=request.user, token=form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(request, f"You signed in with a recovery code; {left} left. "
                                          "Make new ones in Account → Two-factor sign-in if you are running out.")
            return redirect(_safe_next(request))
        form.add_error("token", "That code is not valid (or was already used). Try the current code from the app.")
    return render(request, "workspaces/two_factor_verify.html", {"form": form, "next": _safe_next(request)})


@login_required
def two_factor_setup(request):
    """Enrol an authenticator app (QR code + the secret for manual entry); show the recovery codes once."""
    has_device = user_has_device(request.user)
    if has_device and not two_factor_verified(request):
        return redirect(reverse("two_factor_verify") + "?" + urlencode({"next": request.get_full_path()}))
    next_url = _safe_next(request)
    if request.method == "POST" and request.POST.get("action") == "regenerate" and has_device:
        codes = services.recovery_codes_regenerate(user=request.user)
        return render(request, "workspaces/two_factor_codes.html", {"codes": codes, "next": next_url})
    if has_device:
        remaining = StaticToken.objects.filter(device__user=request.user).count()
        return render(request, "workspaces/two_factor_setup.html",
                      {"enrolled": True, "remaining_codes": remaining, "next": next_url})
    if request.method == "POST":
        form = TwoFactorEnrolForm(request.POST)
        if form.is_valid():
            result = services.two_factor_enrolment_confirm(
                user=request.user, device_id=form.cleaned_data["device_id"], token=form.cleaned_data["token"])
            if result is not None:
                device, codes = result
                otp_login(request, device)
                request.session[TWO_FACTOR_HAS_DEVICE_KEY] = True
                return render(request, "workspaces/two_factor_codes.html", {"codes": codes, "next": next_url})
            form.add_error("token", "That code does not match. Check the time on your phone and try the current code.")
    else:
        form = None
    device = services.two_factor_enrolment_start(user=request.user)
    if form is None:
        form = TwoFactorEnrolForm(initial={"device_id": device.pk})
    secret = b32encode(device.bin_key).decode()
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    workspace = getattr(request, "workspace", None)
    return render(request, "workspaces/two_factor_setup.html", {
        "enrolled": False, "form": form, "qr_svg": mark_safe(qr_svg),  # noqa: S308 - segno's own markup
        "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), "next": next_url,
        "required": bool(workspace is not None and workspace.require_two_factor),
    })


@workspace_admin_required
def workspace_security(request):
    """Settings → Security: require two-factor sign-in for every member."""
    workspace = request.workspace
    form = WorkspaceSecurityForm(request.POST or None, initial={"require_two_factor": workspace.require_two_factor})
    if request.method == "POST" and form.is_valid():
        services.workspace_security_update(workspace=workspace, actor=request.user,
                                           require_two_factor=form.cleaned_data["require_two_factor"])
        messages.success(request, "Security settings saved.")
        return redirect("workspace_security")
    return render(request, "workspaces/security.html", {"form": form})


AUDIT_PAGE_SIZE = 50


@workspace_admin_required
def audit_log(request):
    """Settings → Audit log: who did what in this workspace, newest first."""
    page = Paginator(audit_entries(workspace=request.workspace), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "workspaces/audit_log.html", {"page": page})


@login_required
def workspace_create(request):
    """Staff only: a new workspace with its first admin; the staff user lands in it when they are that admin."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can create workspaces.")
    form = WorkspaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        workspace = services.workspace_create(name=data["name"], owner=data["admin_username"],
                                              default_country=data["default_country"])
        messages.success(request, f"Workspace {workspace.name} created with {data['admin_username'].get_username()} "
                                  "as its admin.")
        if data["admin_username"].pk == request.user.pk:
            request.session[SESSION_KEY] = workspace.pk
        return redirect("home")
    return render(request, "workspaces/workspace_create.html", {"form": form})


def server_error(request):
    """handler500: when PostgreSQL or Redis is unreachable, a 503 page that says so and that nothing saved is
    lost, rendered without the request's context (no session, user, database or cache); else Django's own."""
    import sys

    from django.template import loader
    from django.views import defaults

    from workspaces.outages import outage_kind

    kind = outage_kind(sys.exc_info()[1])
    if kind is None:
        return defaults.server_error(request)
    response = HttpResponse(loader.get_template("errors/outage.html").render({"kind": kind}), status=503)
    response["Retry-After"] = "30"
    response["Cache-Control"] = "no-store"
    return response
