"""Optional embeddings for hybrid retrieval, through an OpenAI-compatible `/embeddings` endpoint.

Configured by the deployment's secrets in the environment (read when used, never stored or logged):
`KNOWLEDGE_EMBEDDINGS_BASE_URL` (e.g. https://api.openai.com/v1), `KNOWLEDGE_EMBEDDINGS_API_KEY`,
`KNOWLEDGE_EMBEDDINGS_MODEL` (default text-embedding-3-small). Without a base URL nothing here runs and
retrieval is full text only. Every request connects through the outbound guard (`workspaces/outbound.py`).

- Passages are embedded off-request: `knowledge.tasks.passages_embed` (queued after the commit that changed a
  knowledge base's passages) calls `services.passages_embed`. A snapshot copies its passages' embeddings.
- Storage: `Passage.embedding`, float32 little-endian bytes of the unit vector (compact: 4 bytes a dimension),
  and `embedding_model`; where PostgreSQL has the `vector` extension (pgvector), migration 0004 also adds
  `knowledge_passage.embedding_vector` (`pgvector_column()` says whether it exists): the task fills it beside
  the binary column (`vector_literal`), and a snapshot copies it with the passages it freezes.
- Search (`knowledge.search`): the full-text candidates (`CANDIDATES`) are ranked by cosine similarity to the
  question's embedding — in SQL by pgvector's `<=>` (cosine distance) over the candidates when the column
  exists, else numpy over their binary vectors: the same order — and the two rankings fused by reciprocal rank
  (`rrf`). The question's embedding is one request on the search's path (`QUERY_TIMEOUT`); if it fails, the
  full-text ranking is returned as it is. (The column has no fixed dimension, as models differ, so there is no
  HNSW index over a whole knowledge base: the vector ranking is exact over the bounded candidates.)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import httpx
import numpy as np
from django.conf import settings

from workspaces import outbound

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "text-embedding-3-small"
BATCH = 64
TASK_TIMEOUT = 30.0
QUERY_TIMEOUT = 3.0
CANDIDATES = 30
RRF_K = 60


class EmbeddingError(Exception):
    """The endpoint failed or answered something we cannot read (message without the key). `transient`: a
    network error, 429 or 5xx (the task retries those); else permanent (a refused key, a wrong model)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class EmbeddingsConfig:
    base_url: str
    model: str

    def api_key(self) -> str:
        return _setting("KNOWLEDGE_EMBEDDINGS_API_KEY")


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, "") or "")


def embeddings_config() -> EmbeddingsConfig | None:
    base_url = _setting("KNOWLEDGE_EMBEDDINGS_BASE_URL").rstrip("/")
    if not base_url:
        return None
    return EmbeddingsConfig(base_url=base_url, model=_setting("KNOWLEDGE_EMBEDDINGS_MODEL") or DEFAULT_MODEL)


def embed(texts: list[str], *, config: EmbeddingsConfig, timeout: float) -> np.ndarray:
    """Unit vectors (float32, one row per text) from the endpoint, through the outbound guard."""
    headers = {"Content-Type": "application/json"}
    key = config.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        with outbound.client(timeout=timeout) as http:
            response = http.post(f"{config.base_url}/embeddings", headers=headers,
                                 json={"model": config.model, "input": texts})
    except httpx.HTTPError as exc:
        raise EmbeddingError(f"The embeddings endpoint could not be reached ({type(exc).__name__}).",
                             transient=not isinstance(exc, outbound.OutboundRefused)) from None
    if response.status_code >= 400:
        raise EmbeddingError(f"The embeddings endpoint answered HTTP {response.status_code}.",
                             transient=response.status_code == 429 or response.status_code >= 500)
    try:
        rows = sorted(response.json()["data"], key=lambda d: d.get("index", 0))
        matrix = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (ValueError, KeyError, TypeError):
        raise EmbeddingError("The embeddings endpoint's answer is not a list of embeddings.") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(texts):
        raise EmbeddingError("The embeddings endpoint answered a different number of embeddings.")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def pack(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack_many(blobs: list[bytes]) -> np.ndarray:
    """One matrix from stored vectors of the same length (the caller filters by model)."""
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)


def cosine_order(query: np.ndarray, blobs: list[bytes]) -> list[int]:
    """Indices of `blobs` best first by cosine similarity to `query` (all unit vectors: a dot product)."""
    matrix = unpack_many(blobs)
    if matrix.shape[1] != query.shape[0]:
        return []
    return [int(i) for i in np.argsort(-(matrix @ query), kind="stable")]


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector ('[0.1,0.2,...]'), for a `%s::vector` parameter."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def rrf(*rankings: list[int], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: (id, Σ 1/(k + rank)) best first; ties keep the first ranking's order."""
    scores: dict[int, float] = {}
    first: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            first.setdefault(item, len(first))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def pgvector_column(connection) -> bool:
    """Whether knowledge_passage has the pgvector column (PostgreSQL with the `vector` extension installed
    when migration 0004 ran)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('knowledge_passage') "
                       "AND attname = 'embedding_vector' AND NOT attisdropped")
        return cursor.fetchone() is not None


def pgvector_installed(connection) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        return cursor.fetchone() is not None
