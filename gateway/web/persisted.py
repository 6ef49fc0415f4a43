"""Persisted queries: Apollo's automatic persisted queries, and an optional allow-list.

APQ: a client sends ``extensions.persistedQuery {version: 1, sha256Hash}`` without the query;
the gateway answers ``PERSISTED_QUERY_NOT_FOUND`` until the client has sent the query once
with its hash. Documents are kept in the cache backend, so replicas sharing Redis share them.

Allow-list (``[graphql] persisted_queries = "manifest.json"``): only the documents in the
manifest run; anything else is ``PERSISTED_QUERY_NOT_ALLOWED``. The manifest is Apollo's
``{"operations": [{"id": sha256, "body": "query …"}]}`` or a plain ``{sha256: query}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.core.cache import KEY_PREFIX, PageCache

DOCUMENT_TTL_SECONDS = 7 * 24 * 3600


class PersistedQueryError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def load_manifest(path: str | Path) -> dict[str, str]:
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        return {op["id"]: op["body"] for op in data["operations"]}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return dict(data)
    raise ValueError("not a persisted query manifest")


class PersistedQueries:
    def __init__(self, cache: PageCache, allow_list: Mapping[str, str] | None = None) -> None:
        self.cache = cache
        self.allow_list = dict(allow_list) if allow_list is not None else None

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
        key = f"{KEY_PREFIX}:apq:{digest}"
        if query is None:
            stored: str | None = await self.cache._call(self.cache.backend.get, key)
            if stored is None:
                raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return stored
        if sha256(query) != digest:
            raise PersistedQueryError("provided sha does not match query", "BAD_REQUEST")
        await self.cache._call(self.cache.backend.set, key, query, ttl=DOCUMENT_TTL_SECONDS)
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
