"""Answers given again: the same GET of a data route within ``ttl_s`` gets the same bytes,
before FastAPI parses anything (no routing, no parameter validation, no thread, no Redis).

Reports and series may be a quarter of a second old anyway (``Reports.max_staleness_s``): a
question asked hundreds of times a second is answered once per interval. Only 200 answers are
kept, per path and query string as sent; a request that is not authorized passes through (and
gets its 401 from the app).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from time import monotonic

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KEPT_ANSWERS = 256

Key = tuple[str, bytes]  # the path and the query string as sent
# When answered, the route that answered, the response's headers, its body.
Answer = tuple[float, object, list[tuple[bytes, bytes]], bytes]


class RecentAnswers:
    """ASGI middleware keeping the latest 200 answers of ``paths`` for ``ttl_s`` seconds."""

    def __init__(
        self,
        app: ASGIApp,
        paths: frozenset[str],
        ttl_s: float,
        authorized: Callable[[Scope], bool],
    ) -> None:
        self.app, self.paths, self.ttl_s, self.authorized = app, paths, ttl_s, authorized
        self.answers: OrderedDict[Key, Answer] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in self.paths
            or not self.authorized(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"])
        kept = self.answers.get(key)
        if kept is not None and monotonic() - kept[0] < self.ttl_s:
            scope["route"] = kept[1]  # for the metrics, as if the route had answered
            await send({"type": "http.response.start", "status": 200, "headers": kept[2]})
            await send({"type": "http.response.body", "body": kept[3]})
            return
        await self._answer_and_keep(key, scope, receive, send)

    async def _answer_and_keep(self, key: Key, scope: Scope, receive: Receive, send: Send) -> None:
        started = monotonic()
        start: Message = {}
        parts: list[bytes] = []

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, noting)
        if start.get("status") == 200:
            self.answers[key] = (
                started,
                scope.get("route"),
                list(start.get("headers", [])),
                b"".join(parts),
            )
            self.answers.move_to_end(key)
            while len(self.answers) > KEPT_ANSWERS:
                self.answers.popitem(last=False)
