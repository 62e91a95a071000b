"""Knowledge bases: sources (text, files, web pages) split into passages, and the frozen snapshots that
published agent versions answer from.

Passages are searched with the database's own full-text search: a generated `tsvector` column with a GIN
index on PostgreSQL, an FTS5 table kept by triggers on SQLite (migrations/0002, vendor SQL). The ORM never
names either: `knowledge.search` does.
"""
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from agents.models import AgentVersion, ImmutableVersionError
from workspaces.models import Workspace


class KnowledgeBase(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    # A digest of its passages (source by source), kept by knowledge.services: a snapshot with the same digest
    # is reused on publish, and the diff compares it with a published version's snapshot.
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_knowledge_base_name")]

    def __str__(self) -> str:
        return self.name


class KnowledgeSource(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        FILE = "file", "File"
        URL = "url", "Web page"

    class FetchStatus(models.TextChoices):
        NONE = "", "—"
        PENDING = "pending", "Waiting for its first fetch"
        OK = "ok", "Fetched"
        FAILED = "failed", "Failed"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    title = models.CharField(max_length=200)
    url = models.CharField("URL", max_length=2000, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    # The text the passages were cut from (typed, extracted from the file, or from the page's last good fetch).
    text = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    passage_count = models.PositiveIntegerField(default=0, editable=False)
    # Web pages: re-fetched every `refresh_hours` (0 = never) by the beat task knowledge.tasks.sources_refresh_due.
    refresh_hours = models.PositiveIntegerField(default=24)
    fetch_status = models.CharField(max_length=8, choices=FetchStatus.choices, blank=True, default="")
    fetch_error = models.CharField(max_length=500, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    next_fetch_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["knowledge_base_id", "title", "id"]

    def __str__(self) -> str:
        return self.title


class KnowledgeSnapshot(models.Model):
    """The passages of a knowledge base frozen at one publish: what a published version answers from.

    Never changed; kept when the knowledge base is deleted (the versions that use it still answer)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="snapshots")
    name = models.CharField(max_length=120)
    content_hash = models.CharField(max_length=64)
    passage_count = models.PositiveIntegerField(default=0)
    source_titles = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.created_at:%Y-%m-%d %H:%M})"


class Passage(models.Model):
    """A piece of a source: live (knowledge_base set) or frozen in a snapshot (snapshot set), never both."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey(KnowledgeBase, null=True, blank=True, on_delete=models.CASCADE,
                                       related_name="passages")
    snapshot = models.ForeignKey(KnowledgeSnapshot, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="passages")
    source = models.ForeignKey(KnowledgeSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_title = models.CharField(max_length=200)
    position = models.PositiveIntegerField(help_text="1 for the source's first passage, then 2, 3, …")
    text = models.TextField()
    # Optional (knowledge/embeddings.py): the passage's unit vector as float32 bytes, and the model that made it;
    # null until the embeddings task has run (or when no embeddings endpoint is configured).
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=200, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        db_table = "knowledge_passage"  # named by the vendor SQL of migration 0002
        ordering = ["source_title", "position"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(knowledge_base__isnull=False, snapshot__isnull=True)
                           | Q(knowledge_base__isnull=True, snapshot__isnull=False)),
                name="passage_live_or_frozen",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_title} · {self.position}"


class VersionKnowledge(models.Model):
    """A knowledge base used by an agent version. A draft reads the live passages; a published version reads
    the snapshot taken when it was published (knowledge.services.version_knowledge_copy)."""

    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="knowledge_links")
    knowledge_base = models.ForeignKey(KnowledgeBase, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="version_links")
    snapshot = models.ForeignKey(KnowledgeSnapshot, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="version_links")
    every_turn = models.BooleanField(
        "look up every caller turn", default=False,
        help_text="Retrieve passages for each caller turn before the model answers (else the model calls "
                  "search_knowledge when it needs to).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "knowledge_base"], name="uniq_version_knowledge")]

    @property
    def name(self) -> str:
        return self.snapshot.name if self.snapshot_id else (self.knowledge_base.name if self.knowledge_base else "")

    def clean(self):
        if self.knowledge_base_id is None and self.snapshot_id is None:
            raise ValidationError("Choose a knowledge base.")

    def _check_mutable(self):
        if self.version_id and AgentVersion.objects.filter(pk=self.version_id,
                                                           state=AgentVersion.State.PUBLISHED).exists():
            raise ImmutableVersionError("The knowledge of a published version cannot be changed.")

    def save(self, *args, **kwargs):
        self._check_mutable()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_mutable()
        return super().delete(*args, **kwargs)
