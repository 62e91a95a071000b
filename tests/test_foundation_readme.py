"""The README stays true: every environment variable the settings read is documented; two commands to start."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def settings_env_vars() -> set[str]:
    names = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names |= set(re.findall(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"', path.read_text()))
    return names


def test_every_environment_variable_is_in_the_readme():
    names = settings_env_vars()
    assert {"DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL"} <= names
    missing = sorted(name for name in names if f"`{name}`" not in README)
    assert not missing, f"document these in README.md: {missing}"


def test_exactly_two_commands_for_a_fresh_machine():
    block = re.search(r"## Run it, test it.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["bin/run", "bin/test"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"
