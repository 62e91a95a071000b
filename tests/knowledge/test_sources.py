"""Sources: typed text, files (PDF, Word, HTML, Markdown, plain text) with clear refusals, cut into passages
that keep their source and position; and searches never cross workspaces."""
import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from knowledge import services
from knowledge.extraction import passages_split
from knowledge.models import KnowledgeSource, Passage
from knowledge.selectors import passages_search

from .conftest import make_docx, make_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(workspace):
    return services.knowledge_base_create(workspace=workspace, name="Help")


def _search(kb, q, **kw):
    return passages_search(workspace_id=kb.workspace_id, query=q, knowledge_base_ids=[kb.pk], **kw)


def test_text_is_cut_into_passages_labelled_by_their_heading_with_source_and_position(kb):
    source = services.source_text_add(knowledge_base=kb, title="Policies", text=(
        "# Returns\nReturn items within 30 days.\n\n# Shipping\nWe ship in 5 days.\n\nExpress costs 9 euros."))
    passages = list(Passage.objects.filter(source=source).order_by("position"))
    assert [(p.position, p.text) for p in passages] == [
        (1, "Returns: Return items within 30 days."),
        (2, "Shipping: We ship in 5 days.\nExpress costs 9 euros."),
    ]
    assert source.passage_count == 2 and all(p.source_title == "Policies" for p in passages)
    hit = _search(kb, "how much does express shipping cost?")[0]
    assert (hit.source_title, hit.position, hit.citation) == ("Policies", 2, "Policies · passage 2")


def test_long_paragraphs_are_cut_at_sentence_ends():
    text = " ".join(f"Sentence number {i} says something useful about the product." for i in range(60))
    pieces = passages_split(text)
    assert len(pieces) > 1 and all(len(p) <= 1200 for p in pieces)
    assert all(p.endswith(".") for p in pieces)


def test_a_pdf_a_word_file_html_markdown_and_plain_text_are_read(kb):
    services.source_file_add(knowledge_base=kb, name="guide.pdf",
                             data=make_pdf(["The warranty lasts two years.", "Keep the receipt."]))
    services.source_file_add(knowledge_base=kb, name="faq.docx",
                             data=make_docx("Opening hours", ["We are open from 9 to 5 on weekdays."]))
    services.source_file_add(knowledge_base=kb, name="page.html", data=(
        b"<html><head><title>T</title><script>var secret = 'x';</script></head><body><nav>Home</nav>"
        b"<h2>Parking</h2><p>Free parking behind the store.</p></body></html>"))
    services.source_file_add(knowledge_base=kb, name="notes.md", data=b"# Pets\nDogs are welcome inside.")
    services.source_file_add(knowledge_base=kb, name="notes.txt", data="Caf\u00e9 on the first floor.".encode())
    assert "warranty lasts two years" in _search(kb, "warranty")[0].text
    assert _search(kb, "opening hours weekdays")[0].text == "Opening hours: We are open from 9 to 5 on weekdays."
    parking = _search(kb, "parking")[0].text
    assert parking == "Parking: Free parking behind the store." and "secret" not in parking
    assert _search(kb, "are dogs allowed")[0].text == "Pets: Dogs are welcome inside."
    assert _search(kb, "café")[0].source_title == "notes.txt"
    assert set(KnowledgeSource.objects.values_list("kind", flat=True)) == {"file"}


@pytest.mark.parametrize("name, data, message", [
    ("slides.pptx", b"PK...", "not a file we can read: upload PDF, Word (.docx), HTML, Markdown or plain text"),
    ("broken.pdf", b"%PDF-1.4 nonsense", "This PDF cannot be read"),
    ("broken.docx", b"not a zip", "This Word file cannot be read"),
    ("empty.txt", b"   ", "has no text we can read"),
])
def test_a_file_we_cannot_read_is_refused_with_a_clear_message_and_nothing_is_stored(kb, name, data, message):
    with pytest.raises(ValidationError) as exc:
        services.source_file_add(knowledge_base=kb, name=name, data=data)
    assert message in exc.value.message_dict["file"][0]
    assert not KnowledgeSource.objects.exists() and not Passage.objects.exists()


@override_settings(KNOWLEDGE_MAX_FILE_BYTES=1024 * 1024)
def test_a_file_over_the_size_limit_is_refused_with_its_size_and_the_limit(kb):
    with pytest.raises(ValidationError) as exc:
        services.source_file_add(knowledge_base=kb, name="big.txt", data=b"a " * 700_000)
    assert exc.value.message_dict["file"] == [
        "big.txt is 1.3 MB: files can be at most 1 MB. Split it, or upload the part the agent needs."]


@override_settings(KNOWLEDGE_MAX_SOURCE_CHARS=100)
def test_text_over_the_character_limit_is_refused(kb):
    with pytest.raises(ValidationError) as exc:
        services.source_text_add(knowledge_base=kb, title="Long", text="word " * 50)
    assert "at most 100" in exc.value.message_dict["text"][0]


def test_editing_and_deleting_a_source_replaces_its_passages(kb):
    source = services.source_text_add(knowledge_base=kb, title="A", text="Old answer about lamps.")
    before = kb.content_hash
    services.source_text_update(source=source, title="A", text="New answer about chairs.")
    kb.refresh_from_db()
    assert kb.content_hash != before
    assert _search(kb, "lamps") == [] and _search(kb, "chairs")[0].text == "New answer about chairs."
    services.source_delete(source=source)
    assert _search(kb, "chairs") == [] and not Passage.objects.exists()


def test_passages_of_another_workspace_never_come_back(kb, other_workspace):
    theirs = services.knowledge_base_create(workspace=other_workspace, name="Theirs")
    services.source_text_add(knowledge_base=theirs, title="Secret", text="The vault code is under the mat.")
    services.source_text_add(knowledge_base=kb, title="Ours", text="Our vault is a metaphor.")
    # Even with the other workspace's knowledge base id, a search in ours finds only ours.
    hits = passages_search(workspace_id=kb.workspace_id, query="vault code mat",
                           knowledge_base_ids=[kb.pk, theirs.pk])
    assert [h.source_title for h in hits] == ["Ours"]
    assert passages_search(workspace_id=kb.workspace_id, query="vault", knowledge_base_ids=[theirs.pk]) == []


def test_what_a_caller_says_cannot_change_the_query_syntax(kb):
    services.source_text_add(knowledge_base=kb, title="A", text="Refunds take five days.")
    for q in ['refunds" OR *', "refunds) | !(x", "NEAR(refunds", "refunds:* & '", "''", "a", ""]:
        hits = _search(kb, q)
        assert all(h.source_title == "A" for h in hits)
