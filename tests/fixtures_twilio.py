"""Fixtures for the Twilio sandbox and the Prism contract mock (filled in by the sandbox work)."""
