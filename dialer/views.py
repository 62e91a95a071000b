"""The dialer's pages and browser endpoints: Settings → Dialer (admins only: connect Twilio, phone numbers,
caller IDs, local presence), the voice token, the call log, Troubleshoot Calls.

Thin views: form → service → render. Every object is looked up in request.workspace
(another workspace's id is a 404). Twilio's webhooks are in `dialer.webhooks`.
"""
from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dialer.forms import (
    ByokForm,
    CallerIdAddForm,
    CallLogFilterForm,
    LocalPresenceForm,
    NumberSearchForm,
    ProvisionForm,
)
from dialer.models import Call, VoicemailDropMessage
from dialer.selectors import call_get, call_log_members, calls_for_workspace, connection_for_token, voicemail_get
from dialer.tokens import VoiceTokenUnavailable, sandbox_signalling, voice_token_issue, voice_token_rate_limited
from telephony import errors, numbering, services, twilio_gateway
from telephony.models import CallerId, NumberPurchase, PhoneNumber
from telephony.selectors import (
    caller_id_get,
    caller_ids_for_dialer,
    caller_ids_for_workspace,
    connection_get,
    dialer_settings,
    number_purchases_open,
    phone_number_get,
    phone_numbers_for_workspace,
    phone_system_status,
    phone_system_status_compute,
    status_cache_key,
)
from workspaces.decorators import api_member_required, workspace_admin_required, workspace_member_required

TWILIO_BUSY = "Twilio is not answering; retrying…"
CALLS_PER_PAGE = 25


# ---------------------------------------------------------------------------
# Settings → Dialer


def _settings_context(request, *, connection=None, byok_form=None):
    workspace = request.workspace
    if connection is None:
        connection = connection_get(workspace=workspace)
    return {
        "connection": connection,
        "byok_form": byok_form or ByokForm(connection=connection),
        "hosted_available": services.hosted_available(),
        "local_presence_form": LocalPresenceForm(initial={"enabled": bool(connection and connection.local_presence)}),
        "number_count": PhoneNumber.objects.filter(workspace=workspace).count(),
        "caller_id_count": CallerId.objects.filter(workspace=workspace).count(),
    }


@require_GET
@workspace_admin_required
def settings_page(request):
    return render(request, "dialer/settings.html", _settings_context(request))


@require_POST
@workspace_admin_required
def connect_byok(request):
    connection = connection_get(workspace=request.workspace)
    form = ByokForm(request.POST, connection=connection)
    if form.is_valid():
        try:
            services.connection_save_byok(workspace=request.workspace, account_sid=form.cleaned_data["account_sid"],
                                          auth_token=form.cleaned_data["auth_token"] or None, actor=request.user)
        except services.DialerError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Credentials saved. Checking them with Twilio…", extra_tags="status-note")
            return redirect("dialer:settings")
    context = _settings_context(request, connection=connection, byok_form=form)
    return render(request, "dialer/settings.html", context, status=400)


@require_POST
@workspace_admin_required
def connect_hosted(request):
    try:
        services.connection_start_hosted(workspace=request.workspace, actor=request.user)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Setting up your hosted Twilio account…", extra_tags="status-note")
    return redirect("dialer:settings")


@require_POST
@workspace_admin_required
def connection_check(request):
    try:
        services.connection_revalidate(workspace=request.workspace)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    return redirect("dialer:settings")


@require_GET
@workspace_admin_required
def connection_status(request):
    """The status card (htmx polls it every 2s while validating) plus the sidebar banner, swapped out of band."""
    from django.core.cache import cache

    workspace = request.workspace
    connection = connection_get(workspace=workspace)
    # Fresh banner state: the worker that changed it may not share this process's cache.
    status = phone_system_status_compute(workspace_id=workspace.pk)
    key = status_cache_key(workspace.pk)
    if cache.get(key) != status:
        cache.set(key, status, 300)
    return render(request, "dialer/_connection_status.html", {
        "connection": connection, "phone_system": status, "oob": True,
        "number_count": PhoneNumber.objects.filter(workspace=workspace).count(),
    })


@require_POST
@workspace_admin_required
def local_presence(request):
    form = LocalPresenceForm(request.POST)
    if form.is_valid():
        enabled = form.cleaned_data["enabled"]
        services.local_presence_set(workspace=request.workspace, enabled=enabled)
        messages.success(request, f"Local presence is {'on' if enabled else 'off'}.")
    return redirect(request.POST.get("next") == "caller_ids" and "dialer:caller_ids" or "dialer:settings")


# ---------------------------------------------------------------------------
# Phone numbers


def _numbers_context(request):
    workspace = request.workspace
    return {
        "numbers": list(phone_numbers_for_workspace(workspace=workspace)),
        "purchases": list(number_purchases_open(workspace=workspace)),
        "connection": connection_get(workspace=workspace),
        "numbers_url": reverse("dialer:numbers"),
        "sandbox": services.sandbox_active(),
    }


@require_GET
@workspace_admin_required
def numbers_page(request):
    from django.db.models import F

    from dialer.selectors import number_destinations

    context = _numbers_context(request)
    numbers = list(phone_numbers_for_workspace(workspace=request.workspace).annotate(
        studio_connector=F("connector_link__connector__name"), studio_connector_id=F("connector_link__connector_id")))
    destinations = number_destinations(numbers=numbers, connection=context["connection"])
    for n in numbers:
        n.destination = destinations[n.pk]
    context["numbers"] = numbers
    return render(request, "dialer/numbers.html", context)


@require_GET
@workspace_admin_required
def purchases_fragment(request):
    return render(request, "dialer/_purchases.html",
                  {"purchases": list(number_purchases_open(workspace=request.workspace)), "poll": True})


def _search(request, form, context):
    if not form.is_valid():
        return
    try:
        context["results"] = services.available_numbers_search(
            workspace=request.workspace, country=form.cleaned_data["country"],
            area_code=form.cleaned_data["area_code"], contains=form.cleaned_data["contains"])
    except services.DialerError as exc:
        context["search_error"] = exc.message
    except errors.TwilioError as exc:
        context["search_error"] = (f"Twilio is not answering ({exc.display()}); try again in a moment."
                                   if exc.transient else exc.display())


@require_GET
@workspace_admin_required
def number_search(request):
    searched = "area_code" in request.GET
    form = NumberSearchForm(request.GET if searched else None, initial={"country": "US"})
    context = {"form": form, "results": None, "searched": searched,
               "connection": connection_get(workspace=request.workspace)}
    _search(request, form, context)
    return render(request, "dialer/number_search.html", context)


@require_POST
@workspace_admin_required
def number_provision(request):
    form = ProvisionForm(request.POST)
    search_form = NumberSearchForm({k: request.POST.get(k, "") for k in ("country", "area_code", "contains")})
    context = {"form": search_form, "results": None, "searched": True,
               "connection": connection_get(workspace=request.workspace)}
    if not form.is_valid():
        context["provision_error"] = "; ".join(form.errors.get("phone_number", ["Pick a number from the list."]))
        _search(request, search_form, context)
        return render(request, "dialer/number_search.html", context, status=400)
    phone_number = form.cleaned_data["phone_number"]
    if not form.cleaned_data["confirmed"]:
        # Buying costs money on the customer's Twilio account: say what, where and who pays, then ask.
        return render(request, "dialer/number_provision_confirm.html", {
            **context, "number": phone_number, "locality": form.cleaned_data["locality"],
            "region": form.cleaned_data["region"], "search": search_form.data})
    purchase = services.number_purchase_start(workspace=request.workspace, phone_number=phone_number)
    try:
        number = services.number_provision(purchase_id=purchase.pk, locality=form.cleaned_data["locality"],
                                           region=form.cleaned_data["region"], actor=request.user)
    except services.PurchaseInProgress as exc:
        messages.info(request, exc.message)
        return redirect("dialer:numbers")
    except errors.TwilioTransientError:
        from django.db import transaction

        from telephony.tasks import backoff, provision_number

        transaction.on_commit(lambda: provision_number.apply_async((purchase.pk,), countdown=backoff(0)))
        messages.warning(request, f"{TWILIO_BUSY} We will finish buying {phone_number} in the background.")
        return redirect("dialer:numbers")
    except (errors.TwilioError, services.DialerError) as exc:
        if isinstance(exc, errors.NumberUnavailable):
            message = (f"{phone_number} is no longer available (Twilio error {exc.code}). "
                       "Pick another number; nothing was bought.")
        else:
            message = exc.display() if isinstance(exc, errors.TwilioError) else exc.message
        context["provision_error"] = message
        context["provision_error_number"] = phone_number
        _search(request, search_form, context)
        return render(request, "dialer/number_search.html", context, status=409)
    messages.success(request, f"{number.phone_number} is yours. It is now a caller ID.")
    return redirect("dialer:numbers")


@require_POST
@workspace_admin_required
def purchase_cancel(request, pk):
    if not NumberPurchase.objects.filter(workspace=request.workspace, pk=pk).exists():
        raise Http404
    try:
        services.number_purchase_cancel(workspace=request.workspace, purchase_id=pk)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    return redirect("dialer:numbers")


@require_POST
@workspace_admin_required
def number_primary(request, pk):
    number = phone_number_get(workspace=request.workspace, pk=pk)
    services.number_set_primary(workspace=request.workspace, number_id=number.pk)
    messages.success(request, f"{number.phone_number} is now the primary number.")
    return redirect("dialer:numbers")


@require_POST
@workspace_admin_required
def number_route_to_dialer(request, pk):
    number = phone_number_get(workspace=request.workspace, pk=pk)
    try:
        services.number_route_to_dialer(workspace=request.workspace, number_id=number.pk)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    except errors.TwilioError as exc:
        messages.error(request, exc.retry_hint())
    else:
        messages.success(request, f"Calls to {number.phone_number} now ring your team's browser dialers.")
    return redirect("dialer:numbers")


@require_POST
@workspace_admin_required
def number_simulate_call(request, pk):
    """Against the local sandbox only: have it call this number as Twilio would."""
    number = phone_number_get(workspace=request.workspace, pk=pk)
    try:
        call_sid = services.number_call_simulate(workspace=request.workspace, number_id=number.pk)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The sandbox is calling {number.phone_number} ({call_sid}): a call to an agent "
                                  "shows in Studio → Live calls; a call to the dialer rings the browser dialers that are online (this "
                                  "page's too: answer it in the Dialer panel), and goes to voicemail if nobody does.")
    return redirect("dialer:numbers")


@require_http_methods(["GET", "POST"])
@workspace_admin_required
def number_release(request, pk):
    number = phone_number_get(workspace=request.workspace, pk=pk)
    if request.method == "POST":
        if request.POST.get("confirm") != number.phone_number:
            return render(request, "dialer/number_release.html",
                          {"number": number, "error": f"Type {number.phone_number} to confirm."}, status=400)
        try:
            services.number_release(workspace=request.workspace, number_id=number.pk, actor=request.user)
        except services.DialerError as exc:
            return render(request, "dialer/number_release.html", {"number": number, "error": exc.message}, status=400)
        except errors.TwilioError as exc:
            message = exc.retry_hint()
            return render(request, "dialer/number_release.html", {"number": number, "error": message}, status=502)
        messages.success(request, f"{number.phone_number} was released.")
        return redirect("dialer:numbers")
    return render(request, "dialer/number_release.html", {"number": number})


# ---------------------------------------------------------------------------
# Caller IDs


def _caller_ids_context(request, *, form=None):
    workspace = request.workspace
    connection = connection_get(workspace=workspace)
    caller_ids = list(caller_ids_for_workspace(workspace=workspace))
    return {
        "caller_ids": caller_ids,
        "caller_ids_pending": any(not c.is_usable for c in caller_ids),
        "form": form or CallerIdAddForm(default_country=workspace.default_country),
        "connection": connection,
        "local_presence_form": LocalPresenceForm(initial={"enabled": bool(connection and connection.local_presence)}),
        "caller_ids_url": reverse("dialer:caller_ids"),
        "numbers_url": reverse("dialer:numbers"),
        "sandbox": services.sandbox_active(),
    }


@require_GET
@workspace_admin_required
def caller_ids_page(request):
    return render(request, "dialer/caller_ids.html", _caller_ids_context(request))


@require_POST
@workspace_admin_required
def caller_id_add(request):
    form = CallerIdAddForm(request.POST, default_country=request.workspace.default_country)
    if form.is_valid():
        try:
            caller_id = services.caller_id_add_external(workspace=request.workspace,
                                                        phone_number=form.cleaned_data["phone_number"],
                                                        friendly_name=form.cleaned_data["friendly_name"])
        except services.DialerError as exc:
            form.add_error("phone_number" if exc.field == "phone_number" else None, exc.message)
        except errors.TwilioError as exc:
            form.add_error("phone_number", exc.retry_hint())
        else:
            if caller_id.is_usable:
                messages.success(request, f"{caller_id.phone_number} is already verified on your Twilio account.")
            else:
                messages.info(request, f"Twilio is calling {caller_id.phone_number} now: enter the code "
                                       f"{caller_id.validation_code} when asked.")
            return redirect("dialer:caller_ids")
    return render(request, "dialer/caller_ids.html", _caller_ids_context(request, form=form), status=400)


@require_POST
@workspace_admin_required
def caller_ids_check(request):
    try:
        count = services.caller_ids_check(workspace=request.workspace)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    except errors.TwilioError as exc:
        messages.error(request, exc.retry_hint())
    else:
        messages.success(request, f"{count} number(s) verified." if count else
                         "Not verified yet: answer Twilio's call and enter the code, then check again.")
    return redirect("dialer:caller_ids")


@require_POST
@workspace_admin_required
def caller_ids_poll(request):
    """The caller ID list, htmx-polled every 3s while a verification is pending: checks Twilio, then re-renders."""
    try:
        services.caller_ids_check(workspace=request.workspace)
    except (services.DialerError, errors.TwilioError):
        pass  # the list stays as it is; the next poll (or "Check now", which says why) tries again
    return render(request, "dialer/_caller_ids_table.html", _caller_ids_context(request))


@require_POST
@workspace_admin_required
def caller_id_default(request, pk):
    caller_id = caller_id_get(workspace=request.workspace, pk=pk)
    try:
        services.caller_id_set_default(workspace=request.workspace, caller_id_id=caller_id.pk)
    except services.DialerError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{caller_id.phone_number} is now the default caller ID.")
    return redirect("dialer:caller_ids")


@require_http_methods(["GET", "POST"])
@workspace_admin_required
def caller_id_remove(request, pk):
    caller_id = caller_id_get(workspace=request.workspace, pk=pk)
    if request.method == "POST":
        try:
            services.caller_id_remove(workspace=request.workspace, caller_id_id=caller_id.pk)
        except services.DialerError as exc:
            messages.error(request, exc.message)
        except errors.TwilioError as exc:
            messages.error(request, exc.display())
        else:
            messages.success(request, f"{caller_id.phone_number} was removed.")
        return redirect("dialer:caller_ids")
    return render(request, "dialer/caller_id_remove.html", {"caller_id": caller_id})


# ---------------------------------------------------------------------------
# Voice token


@never_cache
@require_GET
@api_member_required
def voice_token(request):
    retry_after = voice_token_rate_limited(user_id=request.user.pk)
    if retry_after:
        response = JsonResponse({"error": "rate_limited", "message": "Too many token requests; try again shortly.",
                                 "retry_after": retry_after}, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    status = phone_system_status(workspace_id=request.workspace.pk)
    if not status.ready:
        return JsonResponse({"error": status.state, "banner": status.banner or status.detail,
                             "message": status.detail, "fix_url": status.fix_url}, status=409)
    connection = connection_for_token(workspace=request.workspace)
    try:
        if connection is None:
            raise VoiceTokenUnavailable("Connect your phone system: no Twilio account is connected.",
                                        code="not_connected")
        token = voice_token_issue(connection=connection, user=request.user)
    except VoiceTokenUnavailable as exc:
        return JsonResponse({"error": exc.code, "banner": "Phone system error", "message": exc.message,
                             "fix_url": reverse("dialer:settings")}, status=409)
    body = token.as_json()
    if signalling := sandbox_signalling():  # the sandbox answers the SDK's signalling (tests, bin/run --sandbox)
        body["chunderw"] = signalling
    return JsonResponse(body)


@never_cache
@require_GET
@api_member_required
def number_normalize(request):
    """The dialer's server-side check: E.164 of a number typed in the workspace's local format."""
    try:
        e164 = numbering.to_e164(request.GET.get("number", ""), default_country=request.workspace.default_country)
    except numbering.InvalidNumber as exc:
        return JsonResponse({"error": "invalid_number", "message": str(exc)}, status=400)
    return JsonResponse({"e164": e164})


@require_GET
@workspace_member_required
def caller_id_options(request):
    """The "Call from" <option>s (loaded by the panel when it first opens)."""
    return render(request, "dialer/call_from_options.html", {
        "caller_ids": caller_ids_for_dialer(workspace=request.workspace),
        "local_presence": dialer_settings(request.workspace).local_presence,
    })


# ---------------------------------------------------------------------------
# Call log


@require_GET
@workspace_member_required
def call_log(request):
    members = list(call_log_members(workspace=request.workspace))
    form = CallLogFilterForm(request.GET or None, members=members)
    filters = {}
    if form.is_bound:
        if form.foreign_user():
            raise Http404("No such member.")
        if form.is_valid():
            filters = {"user_id": form.cleaned_data["user"], "direction": form.cleaned_data["direction"],
                       "status": form.cleaned_data["status"]}
    calls = calls_for_workspace(workspace=request.workspace, **filters) if not form.errors else Call.objects.none()
    page = Paginator(calls, CALLS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "dialer/call_log_rows.html" if request.headers.get("HX-Request") else "dialer/call_log.html"
    return render(request, template, {"form": form, "page": page, "query": query.urlencode()})


@require_GET
@workspace_member_required
def call_log_export(request):
    """The call log (same filters) as CSV, with dispositions and notes."""
    import csv
    import io

    members = list(call_log_members(workspace=request.workspace))
    form = CallLogFilterForm(request.GET or None, members=members)
    filters = {}
    if form.is_bound and form.is_valid() and not form.foreign_user():
        filters = {"user_id": form.cleaned_data["user"], "direction": form.cleaned_data["direction"],
                   "status": form.cleaned_data["status"]}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["started_at", "direction", "from", "to", "caller_id", "rep", "status", "duration",
                     "disposition", "notes", "voicemail_dropped_at", "call_sid"])
    for call in calls_for_workspace(workspace=request.workspace, **filters)[:50_000]:
        writer.writerow([call.started_at.isoformat(), call.direction, call.from_number, call.to_number,
                         call.caller_id, call.user.get_username() if call.user else "", call.status,
                         "" if call.duration is None else call.duration,
                         call.disposition.name if call.disposition else "", call.notes,
                         call.voicemail_dropped_at.isoformat() if call.voicemail_dropped_at else "", call.sid])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="calls.csv"'
    return response


@require_GET
@workspace_member_required
def call_detail(request, pk: int):
    return render(request, "dialer/call_detail.html", {"call": call_get(workspace=request.workspace, pk=pk)})


@require_GET
@workspace_member_required
def voicemail_audio(request, pk: int, voicemail_pk: int):
    """Twilio's media URL needs our credentials, so the audio is proxied."""
    voicemail = voicemail_get(workspace=request.workspace, call_pk=pk, pk=voicemail_pk)
    connection = connection_get(workspace=request.workspace)
    if connection is None or not connection.has_credentials:
        raise Http404("The phone system is not connected.")
    try:
        upstream = twilio_gateway.recording_media(creds=connection.credentials(),
                                                  recording_sid=voicemail.recording_sid)
    except errors.TwilioNotFound:
        raise Http404("The recording is not at Twilio any more.") from None
    except errors.TwilioError as exc:
        return HttpResponse(f"Twilio could not serve the recording: {exc.display()}", status=502,
                            content_type="text/plain")
    response = StreamingHttpResponse(upstream.iter_content(chunk_size=32 * 1024), content_type="audio/mpeg")
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------
# Troubleshoot Calls


@require_GET
@workspace_member_required
def troubleshoot(request):
    return render(request, "dialer/troubleshoot.html", {})


@never_cache
@require_GET
@workspace_member_required
def troubleshoot_checks(request):
    from dialer.troubleshoot import troubleshoot_run

    checks, alerts = troubleshoot_run(workspace=request.workspace, user=request.user)
    return render(request, "dialer/troubleshoot_checks.html", {"checks": checks, "alerts": alerts})


PUBLIC_URL_SECTION = "## Connecting a real Twilio account to a local or self-hosted install"


@require_GET
@workspace_member_required
def public_url_help(request):
    """The README's section on giving the app an address Twilio can reach, with this install's PUBLIC_BASE_URL."""
    from pathlib import Path

    from django.conf import settings

    from telephony.public_urls import public_base_problem

    try:
        readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    except OSError:
        readme = ""
    start = readme.find(PUBLIC_URL_SECTION)
    if start < 0:
        raise Http404("The README is not installed here.")
    body = readme[start + len(PUBLIC_URL_SECTION):]
    end = body.find("\n## ")
    return render(request, "dialer/public_url_help.html", {
        "section": body[:end if end >= 0 else None].strip(), "title": PUBLIC_URL_SECTION.lstrip("# "),
        "public_base_url": settings.PUBLIC_BASE_URL, "problem": public_base_problem(),
    })


# ---------------------------------------------------------------------------
# Do-not-call list and the limit of concurrent agent calls (both products obey them; telephony owns them)


class DoNotCallForm(forms.Form):
    phone_number = forms.CharField(max_length=32, label="Number")
    reason = forms.CharField(max_length=200, required=False)


class AgentCallLimitForm(forms.Form):
    max_concurrent_agent_calls = forms.IntegerField(min_value=0, max_value=1000,
                                                    label="Agent calls in progress at once")


@workspace_admin_required
def do_not_call_page(request):
    from django.core.exceptions import ValidationError

    from telephony.selectors import do_not_call_numbers, max_concurrent_agent_calls

    form = DoNotCallForm(request.POST if request.POST.get("form") == "dnc" else None)
    limit_form = AgentCallLimitForm(request.POST if request.POST.get("form") == "limit" else None, initial={
        "max_concurrent_agent_calls": max_concurrent_agent_calls(workspace=request.workspace)})
    if request.method == "POST":
        if form.is_bound and form.is_valid():
            try:
                entry = services.do_not_call_add(workspace=request.workspace,
                                                 phone_number=form.cleaned_data["phone_number"],
                                                 reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error("phone_number", exc.message_dict.get("phone_number", exc.messages))
            else:
                messages.success(request, f"{entry.phone_number} is on the do-not-call list.")
                return redirect("dialer:do_not_call")
        elif limit_form.is_bound and limit_form.is_valid():
            services.outbound_call_policy_set(workspace=request.workspace, **limit_form.cleaned_data)
            messages.success(request, "Saved the limit of concurrent agent calls.")
            return redirect("dialer:do_not_call")
    return render(request, "dialer/do_not_call.html", {
        "form": form, "limit_form": limit_form,
        "entries": list(do_not_call_numbers(workspace=request.workspace))})


@require_POST
@workspace_admin_required
def do_not_call_remove(request, pk: int):
    services.do_not_call_remove(workspace=request.workspace, entry_id=pk)
    messages.success(request, "Removed from the do-not-call list.")
    return redirect("dialer:do_not_call")


# ---------------------------------------------------------------------------
# Dispositions, notes and voicemail drop (dialer.dispositions)


def _json_error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": "refused", "message": message}, status=status)


@never_cache
@require_GET
@api_member_required
def wrap_up_options(request):
    """What the panel's after-call card offers: the workspace's dispositions and whether a voicemail message exists."""
    from dialer import dispositions

    return JsonResponse({
        "dispositions": [{"id": d.pk, "name": d.name, "key": d.key, "outcome": d.outcome}
                         for d in dispositions.dispositions_for(workspace=request.workspace)],
        "voicemail_message": VoicemailDropMessage.objects.filter(workspace=request.workspace).exists(),
    })


@require_POST
@api_member_required
def call_disposition(request, call_sid: str):
    from dialer import dispositions

    try:
        disposition_id = int(request.POST.get("disposition") or 0) or None
    except ValueError:
        return _json_error("Choose one of the workspace's dispositions.")
    try:
        call = dispositions.call_disposition_set(workspace=request.workspace, user=request.user, call_sid=call_sid,
                                                 disposition_id=disposition_id, notes=request.POST.get("notes", ""))
    except dispositions.DispositionError as exc:
        return _json_error(str(exc))
    return JsonResponse({"call": call.pk, "disposition": call.disposition.name if call.disposition else "",
                         "notes": call.notes})


@require_POST
@api_member_required
def call_voicemail_drop(request, call_sid: str):
    from dialer import dispositions

    try:
        call = dispositions.voicemail_drop(workspace=request.workspace, user=request.user, call_sid=call_sid,
                                           connection=connection_get(workspace=request.workspace))
    except dispositions.DispositionError as exc:
        return _json_error(str(exc), status=409)
    return JsonResponse({"call": call.pk, "disposition": call.disposition_id,
                         "disposition_name": call.disposition.name if call.disposition else ""})


@never_cache
@require_GET
def voicemail_message_audio(request, token: str):
    """The voicemail-drop message, fetched by Twilio's <Play> (a signed URL: no session)."""
    from dialer import dispositions

    message = dispositions.voicemail_message_for_token(token=token)
    if message is None:
        raise Http404("No such message.")
    return HttpResponse(bytes(message.audio), content_type=message.content_type)


@workspace_member_required
def voicemail_message_preview(request):
    message = VoicemailDropMessage.objects.filter(workspace=request.workspace).first()
    if message is None:
        raise Http404("No message yet.")
    return HttpResponse(bytes(message.audio), content_type=message.content_type)


@require_http_methods(["GET", "POST"])
@workspace_admin_required
def dispositions_page(request):
    """Settings → Dialer → Dispositions and voicemail drop."""
    from dialer import dispositions
    from dialer.models import Disposition

    workspace = request.workspace
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "add":
                dispositions.disposition_save(workspace=workspace, name=request.POST.get("name", ""),
                                              outcome=request.POST.get("outcome", ""))
                messages.success(request, "Disposition added.")
            elif action == "save":
                disposition = Disposition.objects.filter(workspace=workspace, pk=request.POST.get("id") or 0).first()
                if disposition is None:
                    raise Http404("No such disposition.")
                dispositions.disposition_save(workspace=workspace, disposition=disposition,
                                              name=request.POST.get("name", ""), outcome=request.POST.get("outcome", ""))
                messages.success(request, "Disposition saved.")
            elif action == "archive":
                dispositions.disposition_archive(workspace=workspace, disposition_id=int(request.POST.get("id") or 0))
                messages.success(request, "Disposition removed from the list (past calls keep it).")
            elif action == "message":
                upload = request.FILES.get("audio")
                if upload is None:
                    raise dispositions.DispositionError("Choose an MP3 or WAV file.")
                dispositions.voicemail_message_save(workspace=workspace, data=upload.read(VoicemailDropMessage.MAX_BYTES + 1),
                                                    content_type=upload.content_type, file_name=upload.name)
                messages.success(request, "Voicemail message saved.")
            elif action == "message-delete":
                dispositions.voicemail_message_delete(workspace=workspace)
                messages.success(request, "Voicemail message removed.")
            if action:
                return redirect("dialer:dispositions")
        except dispositions.DispositionError as exc:
            error = str(exc)
    return render(request, "dialer/dispositions.html", {
        "dispositions": dispositions.dispositions_for(workspace=workspace),
        "outcomes": Disposition.Outcome.choices,
        "message": VoicemailDropMessage.objects.filter(workspace=workspace).only("id", "file_name", "content_type",
                                                                                 "updated_at").first(),
        "error": error,
    }, status=400 if error else 200)
