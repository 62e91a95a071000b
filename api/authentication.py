"""`Authorization: Bearer <key>` (or `X-Api-Key`): the workspace API key; the request's `auth` is the key."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.models import ApiKey, key_hash


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        raw = ""
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise exceptions.AuthenticationFailed("Use the header Authorization: Bearer <your API key>.")
            raw = value.strip()
        else:
            raw = request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw:
            return None
        key = (ApiKey.objects.select_related("workspace")
               .filter(hashed_key=key_hash(raw), revoked_at__isnull=True).first())
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or was revoked.")
        from api.services import api_key_used

        api_key_used(key=key)
        return key, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A workspace API key (Studio → API keys)."}
