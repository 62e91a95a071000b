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


@pytest.fixture
def agent(workspace):
    from tests.agents.factories import AgentFactory

    return AgentFactory(workspace=workspace, name="Support")


def make_pdf(text_lines: list[str]) -> bytes:
    """A one-page PDF with these lines of text (Helvetica), built by hand: enough for pypdf to read."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for line in text_lines
    ) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def make_docx(heading: str, paragraphs: list[str]) -> bytes:
    import io

    from docx import Document

    document = Document()
    document.add_heading(heading, level=1)
    for p in paragraphs:
        document.add_paragraph(p)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
