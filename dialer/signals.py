"""Invalidate per-process caches of a workspace's voice setup whenever its connection or numbers change.

The voice token endpoint keeps each rep's token context in its process (`call_selectors.token_context_*`),
tagged with the workspace's generation (`voice.workspace_generation_key`) and the user's
(`workspaces.selectors.user_generation_key`); the generations are read with the rate-limit counter in the
one Redis round trip the endpoint makes anyway. Every save and delete of a TwilioConnection or PhoneNumber
through the ORM replaces the workspace's generation at once and again on commit. Bulk `QuerySet.update()`
on these models sends no signal: code that changes token-relevant fields that way (account, API key, TwiML
app, status) must call `voice.workspace_generation_bump` itself (today's bulk updates touch only
`local_presence` and `is_primary`, which the token does not use).
"""
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import PhoneNumber, TwilioConnection
from .voice import workspace_generation_bump


def _bump(workspace_id: int | None) -> None:
    if workspace_id is None:
        return
    workspace_generation_bump(workspace_id=workspace_id)
    transaction.on_commit(lambda: workspace_generation_bump(workspace_id=workspace_id), robust=True)


@receiver(post_save, sender=TwilioConnection, dispatch_uid="dialer.connection_saved_voice_cache")
@receiver(post_delete, sender=TwilioConnection, dispatch_uid="dialer.connection_deleted_voice_cache")
@receiver(post_save, sender=PhoneNumber, dispatch_uid="dialer.number_saved_voice_cache")
@receiver(post_delete, sender=PhoneNumber, dispatch_uid="dialer.number_deleted_voice_cache")
def _voice_setup_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _bump(instance.workspace_id)
