"""Fixtures for browser tests: Playwright driving Debian's chromium (filled in by the CI work)."""
