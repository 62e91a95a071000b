"""Web page sources: fetched through the outbound guard, re-fetched on the schedule (Celery beat), the last
fetch's status kept; a URL pointed at our own network is refused in production settings."""
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from django.test import override_settings
from django.utils import timezone

from knowledge import services, tasks
from knowledge.forms import UrlSourceForm
from knowledge.models import KnowledgeSource
from knowledge.selectors import passages_search
from tests.fakes.http_fake import LocalHttpFake

pytestmark = pytest.mark.django_db

PRODUCTION = {"OUTBOUND_ALLOW_PRIVATE_TARGETS": False, "OUTBOUND_ALLOW_HTTP": False}


class PageServer(LocalHttpFake):
    def __init__(self):
        self.pages = {"/faq": (200, "text/html; charset=utf-8",
                               "<html><head><title>FAQ</title></head><body><h1>Delivery</h1>"
                               "<p>Orders arrive in three days.</p></body></html>")}
        self.hits = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.hits += 1
                status, content_type, body = fake.pages.get(self.path, (404, "text/plain", "nope"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.serve(Handler)


@pytest.fixture
def pages():
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture
def kb(workspace):
    return services.knowledge_base_create(workspace=workspace, name="Site")


def _search(kb, q):
    return passages_search(workspace_id=kb.workspace_id, query=q, knowledge_base_ids=[kb.pk])


def test_a_web_page_is_fetched_cut_into_passages_and_its_status_kept(kb, pages, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        source = services.source_url_add(knowledge_base=kb, url=pages.origin + "/faq", refresh_hours=6)
    source.refresh_from_db()
    assert source.fetch_status == "ok" and source.fetch_error == "" and source.title == "FAQ"
    assert source.next_fetch_at == source.fetched_at + timedelta(hours=6)
    assert _search(kb, "when do orders arrive")[0].text == "Delivery: Orders arrive in three days."


def test_the_beat_task_refetches_due_pages_and_a_failure_keeps_the_last_good_passages(kb, pages,
                                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        source = services.source_url_add(knowledge_base=kb, url=pages.origin + "/faq", refresh_hours=1)
    assert tasks.sources_refresh_due() == 0  # not due yet
    pages.pages["/faq"] = (200, "text/html", "<h1>Delivery</h1><p>Orders arrive tomorrow.</p>")
    KnowledgeSource.objects.filter(pk=source.pk).update(next_fetch_at=timezone.now() - timedelta(minutes=1))
    assert tasks.sources_refresh_due() == 1
    assert _search(kb, "orders arrive")[0].text == "Delivery: Orders arrive tomorrow."

    pages.pages["/faq"] = (503, "text/plain", "down")
    KnowledgeSource.objects.filter(pk=source.pk).update(next_fetch_at=timezone.now() - timedelta(minutes=1))
    tasks.sources_refresh_due()
    source.refresh_from_db()
    assert source.fetch_status == "failed" and source.fetch_error == "The page answered HTTP 503."
    assert _search(kb, "orders arrive")[0].text == "Delivery: Orders arrive tomorrow."


@pytest.mark.parametrize("url", ["https://127.0.0.1/faq", "https://169.254.169.254/latest/meta-data/",
                                 "http://example.com/faq", "https://localhost/x"])
def test_a_url_at_our_own_network_is_refused_in_production_settings(kb, url):
    with override_settings(**PRODUCTION):
        form = UrlSourceForm({"url": url, "refresh_hours": "24"})
        assert not form.is_valid() and form.errors["url"]
        with pytest.raises(Exception) as exc:
            services.source_url_add(knowledge_base=kb, url=url)
    assert "refused" in str(exc.value) or "https://" in str(exc.value)
    assert not KnowledgeSource.objects.exists()


def test_a_stored_page_at_loopback_is_refused_when_fetched_in_production(kb, pages):
    """The guard runs again at connect time (a row stored before, or a redirect, gets no further)."""
    source = KnowledgeSource.objects.create(knowledge_base=kb, kind="url", title="x", url=pages.origin + "/faq",
                                            fetch_status="pending")
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False):
        services.source_fetch(source=source)
    source.refresh_from_db()
    assert source.fetch_status == "failed"
    assert source.fetch_error == "Requests to 127.0.0.1 are refused: it is a loopback address."
    assert pages.hits == 0 and source.passage_count == 0
