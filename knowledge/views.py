"""Studio → Knowledge pages (workspace members; thin: form → service → render)."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents.models import Agent
from agents.services import agent_draft_ensure
from knowledge import selectors, services, tasks
from knowledge.forms import AttachForm, FileSourceForm, KnowledgeBaseForm, TextSourceForm, TryForm, UrlSourceForm
from workspaces.decorators import workspace_member_required


def _kb_or_404(request, kb_id):
    kb = selectors.knowledge_base_get(workspace=request.workspace, knowledge_base_id=kb_id)
    if kb is None:
        raise Http404("No such knowledge base.")
    return kb


def _errors_into(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@workspace_member_required
def knowledge_list(request):
    form = KnowledgeBaseForm(request.POST or None, prefix="kb")
    if request.method == "POST" and form.is_valid():
        try:
            kb = services.knowledge_base_create(workspace=request.workspace, **form.cleaned_data)
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            return redirect("knowledge:detail", kb_id=kb.pk)
    return render(request, "knowledge/knowledge_list.html", {
        "knowledge_bases": selectors.knowledge_bases_list(workspace=request.workspace), "form": form,
    }, status=400 if form.errors else 200)


def _detail_page(request, kb, *, text_form=None, file_form=None, url_form=None, status=200):
    return render(request, "knowledge/knowledge_detail.html", {
        "kb": kb,
        "sources": selectors.sources_list(knowledge_base=kb),
        "drafts": selectors.knowledge_base_drafts(knowledge_base=kb),
        "published": selectors.knowledge_base_published_users(knowledge_base=kb),
        "text_form": text_form or TextSourceForm(prefix="text"),
        "file_form": file_form or FileSourceForm(prefix="file"),
        "url_form": url_form or UrlSourceForm(prefix="url"),
        "try_form": TryForm(),
    }, status=status)


@workspace_member_required
def knowledge_detail(request, kb_id):
    return _detail_page(request, _kb_or_404(request, kb_id))


@workspace_member_required
def snapshot_detail(request, snapshot_id):
    """A frozen copy a published version answers from: its passages and the versions using it."""
    snapshot = selectors.snapshot_get(workspace=request.workspace, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such knowledge snapshot.")
    limit = 200
    return render(request, "knowledge/snapshot_detail.html", {
        "snapshot": snapshot, "passages": selectors.snapshot_passages(snapshot=snapshot, limit=limit),
        "links": selectors.snapshot_versions(snapshot=snapshot), "limit": limit,
    })


@workspace_member_required
@require_POST
def knowledge_delete(request, kb_id):
    kb = _kb_or_404(request, kb_id)
    services.knowledge_base_delete(knowledge_base=kb)
    messages.success(request, f"Knowledge base {kb.name} deleted. Published versions that used it keep their copy.")
    return redirect("knowledge:list")


def _source_add(request, kb, form, form_key: str, add, say):
    """Valid form → service → message and back to the page; a refusal goes next to the form's fields."""
    if form.is_valid():
        try:
            source = add(form.cleaned_data)
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, say(source))
            return redirect("knowledge:detail", kb_id=kb.pk)
    return _detail_page(request, kb, status=400, **{form_key: form})


@workspace_member_required
@require_POST
def source_text_add(request, kb_id):
    kb = _kb_or_404(request, kb_id)
    return _source_add(request, kb, TextSourceForm(request.POST, prefix="text"), "text_form",
                       lambda data: services.source_text_add(knowledge_base=kb, **data),
                       lambda source: f"{source.title}: {source.passage_count} passages.")


@workspace_member_required
@require_POST
def source_file_add(request, kb_id):
    kb = _kb_or_404(request, kb_id)

    def add(data):
        upload = data["file"]
        return services.source_file_add(knowledge_base=kb, name=upload.name, data=upload.read(), title=data["title"])

    return _source_add(request, kb, FileSourceForm(request.POST, request.FILES, prefix="file"), "file_form", add,
                       lambda source: f"{source.title}: {source.passage_count} passages.")


@workspace_member_required
@require_POST
def source_url_add(request, kb_id):
    kb = _kb_or_404(request, kb_id)
    return _source_add(request, kb, UrlSourceForm(request.POST, prefix="url"), "url_form",
                       lambda data: services.source_url_add(knowledge_base=kb, **data),
                       lambda source: f"{source.url} added: it is being fetched.")


def _source_or_404(request, kb_id, source_id):
    kb = _kb_or_404(request, kb_id)
    source = selectors.source_get(knowledge_base=kb, source_id=source_id)
    if source is None:
        raise Http404("No such source.")
    return kb, source


@workspace_member_required
def source_detail(request, kb_id, source_id):
    kb, source = _source_or_404(request, kb_id, source_id)
    form = TextSourceForm(request.POST or None, prefix="text",
                          initial={"title": source.title, "text": source.text})
    if request.method == "POST" and form.is_valid():
        try:
            services.source_text_update(source=source, **form.cleaned_data)
        except ValidationError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, "Saved: drafts use the new text now; published versions keep theirs.")
            return redirect("knowledge:source", kb_id=kb.pk, source_id=source.pk)
    return render(request, "knowledge/source_detail.html", {
        "kb": kb, "source": source, "passages": selectors.source_passages(source=source), "form": form,
    }, status=400 if form.errors else 200)


@workspace_member_required
@require_POST
def source_refetch(request, kb_id, source_id):
    _, source = _source_or_404(request, kb_id, source_id)
    if source.kind != source.Kind.URL:
        raise Http404("Only web pages are fetched.")
    tasks.source_fetch.delay(source.pk)
    messages.success(request, f"Fetching {source.url} again.")
    return redirect("knowledge:detail", kb_id=kb_id)


@workspace_member_required
@require_POST
def source_delete(request, kb_id, source_id):
    _, source = _source_or_404(request, kb_id, source_id)
    services.source_delete(source=source)
    messages.success(request, f"{source.title} deleted.")
    return redirect("knowledge:detail", kb_id=kb_id)


@workspace_member_required
@require_POST
def knowledge_try(request, kb_id):
    """The Try it box (htmx): a question → the passages a call would get, with their scores."""
    kb = _kb_or_404(request, kb_id)
    form = TryForm(request.POST)
    hits = []
    if form.is_valid():
        hits = selectors.passages_search(workspace_id=request.workspace.pk, query=form.cleaned_data["question"],
                                         knowledge_base_ids=[kb.pk], limit=5)
    return render(request, "knowledge/_try_results.html", {"form": form, "hits": hits},
                  status=200 if form.is_valid() else 400)


@workspace_member_required
@require_POST
def knowledge_attach(request, kb_id):
    """Use (or stop using) this knowledge base in an agent's draft."""
    kb = _kb_or_404(request, kb_id)
    form = AttachForm(request.POST)
    if not form.is_valid():
        raise Http404("No such agent.")
    agent = Agent.objects.filter(workspace=request.workspace, pk=form.cleaned_data["agent"]).first()
    if agent is None:
        raise Http404("No such agent.")
    draft = agent_draft_ensure(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=form.cleaned_data["used"],
                                   every_turn=form.cleaned_data["every_turn"])
    if form.cleaned_data["used"]:
        messages.success(request, f"{agent.name}'s draft answers from {kb.name}: publish it for calls to do so.")
    else:
        messages.success(request, f"{agent.name}'s draft no longer uses {kb.name}.")
    return redirect("knowledge:detail", kb_id=kb.pk)


