"""Text out of what people upload or link: PDF (pypdf), Word .docx (python-docx), HTML (the standard library's
parser), Markdown and plain text; and the cutting of that text into passages.

Bad input becomes `ExtractionError` with a message for the person who gave it. CPU-bound: run in a request or
a Celery task, never on a call's event loop.
"""
from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import PurePath

from django.conf import settings


class ExtractionError(Exception):
    """The file or page cannot be read (message in plain words)."""


KINDS = {
    ".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
    ".txt": "text", ".text": "text",
}
ACCEPTED = "PDF, Word (.docx), HTML, Markdown or plain text"


def file_kind(name: str) -> str:
    kind = KINDS.get(PurePath(name or "").suffix.lower())
    if kind is None:
        raise ExtractionError(f"{name or 'This file'} is not a file we can read: upload {ACCEPTED}.")
    return kind


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("This PDF is password-protected: upload an unprotected copy.")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"This PDF cannot be read ({type(exc).__name__}).") from None


def _docx_text(data: bytes) -> str:
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionError(f"This Word file cannot be read ({type(exc).__name__}): save it as .docx.") from None
    lines = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        style = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
        if text and style.startswith("heading"):
            lines.append("")
            lines.append("# " + text)
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav", "footer"}
    BLOCK = {"p", "div", "section", "article", "li", "tr", "br", "table", "ul", "ol", "blockquote", "pre",
             "main", "header", "dd", "dt"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.HEADINGS:
            self.parts.append("\n\n# ")
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag == "p" else "\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.HEADINGS or tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document: headings kept as Markdown headings, scripts and navigation dropped."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    return parser.title.strip(), re.sub(r"\n\s*\n\s*(\n\s*)+", "\n\n", text).strip()


def file_text(*, name: str, data: bytes) -> str:
    """The text of an uploaded file, or ExtractionError (unknown type, too large, unreadable, empty)."""
    kind = file_kind(name)
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    if len(data) > limit:
        raise ExtractionError(f"{name} is {len(data) / 1048576:.1f} MB: files can be at most "
                              f"{limit / 1048576:.0f} MB. Split it, or upload the part the agent needs.")
    if kind == "pdf":
        text = _pdf_text(data)
    elif kind == "docx":
        text = _docx_text(data)
    elif kind == "html":
        text = html_text(_decode(data))[1]
    else:
        text = _decode(data)
    return text_checked(text, name=name)


def text_checked(text: str, *, name: str = "This text") -> str:
    text = (text or "").replace("\x00", "").strip()
    if not text:
        raise ExtractionError(f"{name} has no text we can read (a scanned PDF needs text recognition first).")
    if len(text) > settings.KNOWLEDGE_MAX_SOURCE_CHARS:
        raise ExtractionError(f"{name} holds {len(text):,} characters: a source can hold at most "
                              f"{settings.KNOWLEDGE_MAX_SOURCE_CHARS:,}. Split it into several sources.")
    return text


# ---------------------------------------------------------------------------
# Passages

TARGET_CHARS = 700  # a passage: a paragraph or a few, about what a caller's answer needs
MAX_CHARS = 1200
HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def _blocks(text: str):
    """(heading, paragraph) in order: Markdown headings (also from HTML and Word) label what follows them."""
    heading = ""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line for line in block.strip().split("\n") if line.strip()]
        rest = []
        for line in lines:
            match = HEADING_RE.match(line)
            if match:
                if rest:
                    yield heading, " ".join(rest)
                    rest = []
                heading = match.group(2).strip()
            else:
                rest.append(line.strip())
        if rest:
            yield heading, " ".join(rest)


def _pieces(paragraph: str):
    """A paragraph longer than MAX_CHARS, cut at sentence ends (a sentence longer than that, at spaces)."""
    if len(paragraph) <= MAX_CHARS:
        yield paragraph
        return
    current = ""
    for sentence in SENTENCE_RE.split(paragraph):
        while len(sentence) > MAX_CHARS:
            cut = sentence.rfind(" ", 0, MAX_CHARS)
            cut = cut if cut > 0 else MAX_CHARS
            if current:
                yield current
                current = ""
            yield sentence[:cut]
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > TARGET_CHARS:
            yield current
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        yield current


def passages_split(text: str) -> list[str]:
    """Cut a source's text into passages: paragraphs joined up to TARGET_CHARS under one heading, each passage
    starting with its section's heading (so "Returns: …" is found by a question about returns)."""
    passages: list[str] = []
    current, current_heading = "", None
    for heading, paragraph in _blocks(text):
        for piece in _pieces(paragraph):
            if current and (heading != current_heading or len(current) + 1 + len(piece) > TARGET_CHARS):
                passages.append(current)
                current = ""
            if not current:
                current = f"{heading}: {piece}" if heading else piece
                current_heading = heading
            else:
                current = f"{current}\n{piece}"
    if current:
        passages.append(current)
    return passages
