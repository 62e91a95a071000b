from pathlib import Path

import pytest

HERE = Path(__file__).parent
MANUAL = HERE / "manual.md"
QUESTIONS = HERE / "questions.json"


@pytest.fixture
def manual_kb(workspace):
    from knowledge import services

    kb = services.knowledge_base_create(workspace=workspace, name="Kestrel K2 manual")
    services.source_text_add(knowledge_base=kb, title="K2 owner's manual", text=MANUAL.read_text(encoding="utf-8"))
    kb.refresh_from_db()
    return kb
