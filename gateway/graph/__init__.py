"""The GraphQL layer (Strawberry only). ``enums`` is imported first so the machinery's enums
carry their descriptions before any type mentions them."""

from gateway.graph import enums as _enums  # noqa: F401
