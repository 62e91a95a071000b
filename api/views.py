"""The public API, v1: place an agent call, read one, list them; the OpenAPI schema and its docs page.

Thin: the key (api.authentication) names the workspace; every write is `calls.services.outbound.agent_call_place`
behind an idempotency key (api.services); every read is api.selectors, scoped to the key's workspace.
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors, services
from api.errors import problem
from api.serializers import CallCreateSerializer, CallDetailSerializer, CallSerializer, ProblemSerializer
from workspaces.decorators import workspace_admin_required

PROBLEMS = {code: OpenApiResponse(ProblemSerializer, description=text) for code, text in (
    (401, "No or a wrong API key."), (404, "No such call in this workspace."), (409, "Conflict."),
    (422, "Invalid input, or the call is refused (do-not-call list, caller ID, …): see `code`."),
    (429, "Rate limit or concurrency limit."), (503, "Twilio is unavailable; nothing was placed."))}


class CallPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class CallsView(APIView):
    @extend_schema(
        operation_id="calls_list", summary="List calls", responses={200: CallSerializer(many=True), 401: PROBLEMS[401]},
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, description="queued, ringing, in-progress, completed, …"),
            OpenApiParameter("direction", OpenApiTypes.STR, enum=["inbound", "outbound-api"]),
            OpenApiParameter("agent", OpenApiTypes.INT), OpenApiParameter("environment", OpenApiTypes.INT),
            OpenApiParameter("to", OpenApiTypes.STR, description="The number called, E.164."),
            OpenApiParameter("started_after", OpenApiTypes.DATETIME),
            OpenApiParameter("started_before", OpenApiTypes.DATETIME),
        ])
    def get(self, request):
        from django.utils.dateparse import parse_datetime

        def number(name):
            value = request.query_params.get(name, "")
            return int(value) if value.isdigit() else None

        def when(name):
            value = request.query_params.get(name, "")
            return parse_datetime(value) if value else None

        calls = selectors.api_calls(
            workspace_id=request.auth.workspace_id, status=request.query_params.get("status", ""),
            direction=request.query_params.get("direction", ""), agent=number("agent"),
            environment=number("environment"), to=request.query_params.get("to", ""),
            started_after=when("started_after"), started_before=when("started_before"))
        paginator = CallPagination()
        page = paginator.paginate_queryset(calls, request, view=self)
        return paginator.get_paginated_response(CallSerializer(page, many=True).data)

    @extend_schema(
        operation_id="calls_create", summary="Place an agent call", request=CallCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, location=OpenApiParameter.HEADER,
                                     description="The same key never dials twice: a repeat returns the first "
                                                 "request's call (200).")],
        responses={201: CallSerializer, 200: CallSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404],
                   409: PROBLEMS[409], 422: PROBLEMS[422], 429: PROBLEMS[429], 503: PROBLEMS[503]})
    def post(self, request):
        from agents.models import Agent, AgentVersion, Environment
        from calls.services.outbound import OutboundRefused, agent_call_place

        serializer = CallCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = request.auth
        workspace = key.workspace
        idempotency = (request.headers.get("Idempotency-Key") or "").strip()
        row = None
        if idempotency:
            if len(idempotency) > 255:
                return problem(status_code=422, title="Unprocessable content", code="invalid_idempotency_key",
                               detail="The Idempotency-Key is at most 255 characters.")
            try:
                row, claimed = services.idempotency_claim(workspace=workspace, key=idempotency,
                                                          fingerprint=services.request_fingerprint(request.data))
            except services.IdempotencyConflict as exc:
                return problem(status_code=exc.status, title="Conflict" if exc.status == 409 else
                               "Unprocessable content", code="idempotency_conflict", detail=exc.message)
            if not claimed:
                return Response(CallSerializer(row.call_session).data, status=status.HTTP_200_OK,
                                headers={"Idempotent-Replayed": "true"})
        agent = Agent.objects.filter(workspace=workspace, pk=data["agent"]).select_related("latest_version").first()
        environment = Environment.objects.filter(workspace=workspace, pk=data["environment"]).first()
        pinned = None
        if agent is not None and data["version_mode"] == "pinned" and data.get("version"):
            pinned = AgentVersion.objects.filter(agent=agent, number=data["version"]).first()
        try:
            if agent is None:
                raise OutboundRefused("invalid_agent", "No such agent in this workspace.", field="agent", status=422)
            if environment is None:
                raise OutboundRefused("invalid_environment", "No such environment in this workspace.",
                                      field="environment", status=422)
            session = agent_call_place(
                workspace=workspace, agent=agent, environment=environment, to=data["to"],
                from_number=data.get("from", ""), version_mode=data["version_mode"], pinned_version=pinned,
                variables=data.get("variables"), metadata=data.get("metadata"),
                placed_by=f"API key {key.name}")
        except OutboundRefused as exc:
            if row is not None:
                services.idempotency_release(row=row)
            errors = {exc.field: [exc.message]} if exc.field else None
            headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
            return problem(status_code=exc.status, title={429: "Too many requests", 503: "Service unavailable",
                                                          409: "Conflict"}.get(exc.status, "Call refused"),
                           detail=exc.message, code=exc.code, errors=errors, headers=headers)
        if row is not None:
            services.idempotency_complete(row=row, call_session=session)
        return Response(CallSerializer(session).data, status=status.HTTP_201_CREATED)


class CallDetailView(APIView):
    @extend_schema(operation_id="calls_retrieve", summary="A call: status, answered-by, transcript, analysis",
                   responses={200: CallDetailSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]})
    def get(self, request, call_id: int):
        session = selectors.api_call_get(workspace_id=request.auth.workspace_id, call_id=call_id)
        if session is None:
            raise Http404
        return Response(CallDetailSerializer(session).data)


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema (public: it describes the API, it holds no data)."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []


def docs(request):
    """The API's docs page, rendered from the same schema (no third-party script: the CSP is self-only)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(patterns=None).get_schema(request=None, public=True)
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            operations.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                               "parameters": op.get("parameters", []),
                               "responses": sorted(op.get("responses", {}).keys())})
    return render(request, "api/docs.html", {"schema": schema, "operations": operations})


# ---------------------------------------------------------------------------
# Studio: API keys (workspace admins). The new key's secret is shown once, on the page that created it.


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. CRM or the booking system.")


@workspace_admin_required
def api_keys_page(request):
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, raw = services.api_key_create(workspace=request.workspace, name=form.cleaned_data["name"],
                                           actor=request.user)
        created = {"key": key, "secret": raw}
        form = ApiKeyForm()
    keys = list(selectors.api_keys(workspace=request.workspace))
    response = render(request, "api/keys.html", {"form": form, "keys": keys, "created": created})
    response["Cache-Control"] = "no-store"  # the page with a new secret must not be cached
    return response


@workspace_admin_required
@require_POST
def api_key_revoke(request, key_id: int):
    key = services.api_key_revoke(workspace=request.workspace, key_id=key_id, actor=request.user)
    if key is None:
        raise Http404("No such key.")
    messages.success(request, f"Revoked {key.name}: requests with it now get 401.")
    return redirect("api:keys")
