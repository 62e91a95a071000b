"""The call's dual-channel recording, started when a live call starts (if the version asks for it)."""
from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

logger = logging.getLogger("calls.engine")


async def recording_start(engine) -> None:
    """Start the call's dual-channel recording (in a thread); a failure is logged and shown, the call goes on."""
    from calls.services import recordings as call_services
    from telephony import twilio_gateway

    # An outbound call has no connector: its own recording-status URL (calls.services.outbound).
    callback = engine.ctx.recording_status_url or engine.ctx.public_url(
        f"/v1/agents/{engine.ctx.connector_identifier}/recording-status")
    try:
        recording = await asyncio.to_thread(twilio_gateway.call_recording_start, creds=engine.ctx.creds,
                                            call_sid=engine.ctx.call_sid, status_callback=callback)
    except Exception as exc:  # noqa: BLE001 - TwilioError or anything else: the call goes on
        code = getattr(exc, "code", None)
        logger.warning("call recording could not start",
                       extra=engine.log_extra(code=code, error=type(exc).__name__))
        text = f"The recording could not start (Twilio error {code})." if code else \
            "The recording could not start (Twilio did not answer)."
        try:
            await database_sync_to_async(call_services.recording_error_set)(
                call_session_id=engine.ctx.call_session_id, text=text)
        except Exception:  # noqa: BLE001
            logger.exception("could not store the recording error", extra=engine.log_extra())
        engine.notify({"kind": "recording", "error": text})
        return
    logger.info("call recording started", extra=engine.log_extra(recording_sid=recording.sid))
    try:
        await database_sync_to_async(call_services.recording_status_record)(
            call_session_id=engine.ctx.call_session_id, recording_sid=recording.sid,
            status=recording.status or "in-progress", channels=recording.channels, from_callback=False)
    except Exception:  # noqa: BLE001
        logger.exception("could not store the recording", extra=engine.log_extra())
    engine.notify({"kind": "recording", "recording_sid": recording.sid})

