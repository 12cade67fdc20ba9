"""The one error the HogQL compiler raises: PostHog's 400 body, with the position where known."""

from __future__ import annotations

from typing import Any

__all__ = ["HogQLError", "node_span"]


class HogQLError(Exception):
    """A query the server refuses; ``code`` and ``detail`` go into PostHog's 400 body.

    ``start``/``end`` are character offsets into the query text (HogQLMetadata reports them).
    """

    def __init__(
        self,
        detail: str,
        code: str = "hogql_query_error",
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.start = start
        self.end = end

    @classmethod
    def at(
        cls, node: dict[str, Any] | None, detail: str, code: str = "hogql_query_error"
    ) -> HogQLError:
        """An error placed at ``node``'s span in the query text."""
        start, end = node_span(node)
        return cls(detail, code, start=start, end=end)


def node_span(node: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """The (start, end) character offsets of a parsed node, or (None, None)."""
    if not isinstance(node, dict):
        return None, None
    start, end = node.get("start"), node.get("end")
    return (
        start.get("offset") if isinstance(start, dict) else None,
        end.get("offset") if isinstance(end, dict) else None,
    )
