"""Persisted queries: Apollo's automatic persisted queries, and an optional allow-list.

APQ: a client sends ``extensions.persistedQuery {version: 1, sha256Hash}`` without the query;
the gateway answers ``PERSISTED_QUERY_NOT_FOUND`` until the client has sent the query once
with its hash. Documents are kept in the cache store, so replicas sharing Redis share them:
at most ``graphql.apq_max_entries`` of them (the oldest registered go first), each at most
``graphql.max_document_bytes``. A stored document is used only if it still hashes to the
hash asked for; anything else read back (a value planted in Redis) is a miss.

Allow-list (``[graphql] persisted_queries = "manifest.json"``): only the documents in the
manifest run; anything else is ``PERSISTED_QUERY_NOT_ALLOWED``. The manifest is Apollo's
``{"operations": [{"id": sha256, "body": "query …"}]}`` or a plain ``{sha256: query}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.core.cache import PageCache
from gateway.core.codec import DOCUMENT, KEY_PREFIX
from gateway.graph.document import DEFAULT_MAX_DOCUMENT_BYTES

DOCUMENT_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_MAX_ENTRIES = 1_000
INDEX_KEY = f"{KEY_PREFIX}:apq-index"
HASH = re.compile(r"[0-9a-f]{64}")


class PersistedQueryError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode(errors="surrogatepass")).hexdigest()


def load_manifest(path: str | Path) -> dict[str, str]:
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        return {op["id"]: op["body"] for op in data["operations"]}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return dict(data)
    raise ValueError("not a persisted query manifest")


class PersistedQueries:
    def __init__(
        self,
        cache: PageCache,
        allow_list: Mapping[str, str] | None = None,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    ) -> None:
        self.store = cache.store
        self.allow_list = dict(allow_list) if allow_list is not None else None
        self.max_entries = max_entries
        self.max_document_bytes = max_document_bytes

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run for this request (or None to let GraphQL report it missing)."""
        persisted = (extensions or {}).get("persistedQuery")
        digest = persisted.get("sha256Hash") if isinstance(persisted, Mapping) else None
        if persisted is not None and not isinstance(digest, str):
            raise PersistedQueryError("persistedQuery needs a sha256Hash", "BAD_REQUEST")
        if self.allow_list is not None:
            return self._allowed(query, digest)
        if digest is None:
            return query
        digest = digest.lower()
        if HASH.fullmatch(digest) is None:
            raise PersistedQueryError("sha256Hash must be 64 hexadecimal digits", "BAD_REQUEST")
        key = f"{KEY_PREFIX}:apq:{digest}"
        if query is None:
            stored = await self.store.get(key, DOCUMENT)
            if stored is None or sha256(stored) != digest:
                raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return stored
        if sha256(query) != digest:
            raise PersistedQueryError("provided sha does not match query", "BAD_REQUEST")
        if len(query.encode(errors="surrogatepass")) > self.max_document_bytes:
            raise PersistedQueryError(
                f"the document is larger than {self.max_document_bytes} bytes", "QUERY_TOO_LARGE"
            )
        await self.store.set_capped(
            key, query, DOCUMENT, DOCUMENT_TTL_SECONDS, index=INDEX_KEY, cap=self.max_entries
        )
        return query

    def _allowed(self, query: str | None, digest: str | None) -> str:
        assert self.allow_list is not None
        if digest is None and query is not None:
            digest = sha256(query)
        if digest is None or digest not in self.allow_list:
            raise PersistedQueryError(
                "only persisted queries may run on this gateway", "PERSISTED_QUERY_NOT_ALLOWED"
            )
        document = self.allow_list[digest]
        if query is not None and query != document:
            raise PersistedQueryError("provided sha does not match query", "BAD_REQUEST")
        return document
