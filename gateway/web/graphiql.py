"""The GraphiQL page: Strawberry's, with our example query pre-filled (demo mode)."""

from __future__ import annotations

import re

_EXAMPLE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


def graphiql_page(html: str, example_query: str | None) -> str:
    """``html`` with the editor's initial query replaced by ``example_query``."""
    if example_query is None:
        return html
    escaped = example_query.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
    return _EXAMPLE.sub(lambda _: f"const EXAMPLE_QUERY = `{escaped}`;", html, count=1)
