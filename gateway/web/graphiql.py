"""The GraphiQL page: Strawberry's, served with its scripts from this package (no CDN, so it
works offline) and with our example query pre-filled (demo mode)."""

from __future__ import annotations

import re
from pathlib import Path

_EXAMPLE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


CDN = "https://unpkg.com/"
ASSETS_PATH = "/graphql/assets/"
ASSETS_DIR = Path(__file__).parent / "static"


def graphiql_page(html: str, example_query: str | None) -> str:
    """``html`` loading its assets from ``ASSETS_PATH`` (the same files and paths as the CDN,
    so the page's integrity hashes still hold), with ``example_query`` in the editor."""
    html = html.replace(CDN, ASSETS_PATH)
    if example_query is None:
        return html
    escaped = example_query.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
    return _EXAMPLE.sub(lambda _: f"const EXAMPLE_QUERY = `{escaped}`;", html, count=1)
