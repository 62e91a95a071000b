"""The layout's rules, checked on the source: which app may import which, and where Twilio's REST client lives."""
import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# app -> apps it must never import (docs/architecture.md)
FORBIDDEN = {
    "workspaces": {"telephony", "dialer", "agents", "connectors", "calls", "devtools", "webhooks", "knowledge"},
    "telephony": {"dialer", "agents", "connectors", "calls", "devtools", "webhooks", "knowledge"},
    "dialer": {"agents", "connectors", "calls", "devtools", "webhooks", "knowledge"},
    # Agents offers agents/hooks.py instead: knowledge registers its publish/diff hooks there.
    "agents": {"connectors", "calls", "devtools", "webhooks", "knowledge"},
    "connectors": {"devtools", "dialer"},
    "calls": {"devtools", "dialer", "connectors"},  # connectors call into calls/ (admission), never back
    # Event webhooks: connectors and calls record events; webhooks reads their rows by attribute only.
    "webhooks": {"telephony", "dialer", "connectors", "calls", "devtools", "knowledge"},
    # Knowledge bases: built on agents (versions use them); read by calls (the live call searches them).
    "knowledge": {"telephony", "dialer", "connectors", "calls", "devtools", "webhooks"},
    # Analytics reads calls, dialer calls and agents; nothing imports it (config wires its URLs).
    "analytics": {"connectors", "devtools", "webhooks"},
    # The public API: keys and idempotency of its own; calls are placed and read through calls (services, models).
    "api": {"telephony", "dialer", "connectors", "devtools", "webhooks"},
    # Campaigns place agents' calls only through calls.services.outbound and read their sessions back; reps' calls
    # are the dialer's (campaigns.power reads them and sets their dispositions through dialer.dispositions).
    "campaigns": {"connectors", "devtools", "api"},
}
# Nothing imports the apps on top (config wires their URLs).
for _app, _forbidden in FORBIDDEN.items():
    _forbidden |= {"analytics", "api"} - {_app}
# Nothing below campaigns imports it (calls learns nothing of campaigns: campaigns reads the sessions).
for _app in ("workspaces", "telephony", "dialer", "agents", "connectors", "calls", "webhooks", "analytics", "api"):
    FORBIDDEN[_app] |= {"campaigns"}
# Campaigns draws its progress chart with analytics' server-rendered SVG (`analytics.charts.line_chart`).
FORBIDDEN["campaigns"] -= {"analytics"}


def imported_apps(source: str) -> set[tuple[str, int]]:
    """Top-level packages a module imports (at module level or inside functions), with the line."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def crossings(app: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / app).rglob("*.py")):
        for target, line in imported_apps(path.read_text(encoding="utf-8")):
            if target in FORBIDDEN[app]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return bad


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_app_imports_what_the_layout_forbids(app):
    assert crossings(app) == []


def test_the_arrow_check_sees_imports_inside_functions():
    source = "def f():\n    from dialer.models import Call\n    import calls.engine\n"
    assert imported_apps(source) == {("dialer", 2), ("calls", 3)}


def test_only_the_gateway_imports_twilio_rest():
    offenders = []
    for app in ("config", "workspaces", "telephony", "dialer", "agents", "connectors", "calls", "webhooks", "knowledge",
                "devtools", "analytics", "bench", "api", "campaigns"):
        for path in (ROOT / app).rglob("*.py"):
            if path.relative_to(ROOT).as_posix() == "telephony/twilio_gateway.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and (
                        node.module.startswith("twilio.rest") or (node.module == "twilio" and any(
                            a.name == "rest" for a in node.names))):
                    offenders.append(path.relative_to(ROOT).as_posix())
                if isinstance(node, ast.Import) and any(a.name.startswith("twilio.rest") for a in node.names):
                    offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []
    assert "from twilio.rest" in (ROOT / "telephony" / "twilio_gateway.py").read_text()


def test_devtools_are_not_installed():
    """The sandbox is for local runs and tests: the package list in pyproject.toml leaves it out."""
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(pattern.startswith("devtools") for pattern in include)
    assert {"telephony*", "calls*"} <= set(include)
