"""RecentAnswers: the same GET within the interval gets the kept bytes; errors, other paths and
unauthorized requests always reach the app."""

import asyncio

from entrypoints.api.recent import RecentAnswers


class CountingApp:
    def __init__(self, status: int = 200) -> None:
        self.calls, self.status = 0, status

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        scope["route"] = "the route"
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"n": %d}' % self.calls})


def get(app, path: str = "/v1/reports", query: bytes = b"period=2024", headers=()) -> tuple:
    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": list(headers),
    }
    asyncio.run(app(scope, None, send))
    return sent[0]["status"], sent[1]["body"], scope.get("route")


def recent(inner, ttl_s=60.0, authorized=lambda scope: True) -> RecentAnswers:
    return RecentAnswers(inner, frozenset({"/v1/reports"}), ttl_s, authorized)


def test_the_same_question_is_answered_once_per_interval():
    inner = CountingApp()
    app = recent(inner)
    assert get(app) == (200, b'{"n": 1}', "the route")
    assert get(app) == (200, b'{"n": 1}', "the route")  # kept, and named for the metrics
    assert get(app, query=b"period=2023")[1] == b'{"n": 2}'  # another question
    assert get(app, path="/v1/status")[1] == b'{"n": 3}'  # not a kept route
    assert inner.calls == 3


def test_nothing_is_kept_past_the_interval_nor_an_error():
    inner = CountingApp()
    expired = recent(inner, ttl_s=0)
    get(expired), get(expired)
    assert inner.calls == 2
    failing = CountingApp(status=503)
    app = recent(failing)
    get(app), get(app)
    assert failing.calls == 2


def test_an_unauthorized_request_reaches_the_app_even_when_an_answer_is_kept():
    inner = CountingApp()
    app = recent(inner, authorized=lambda scope: bool(scope["headers"]))
    get(app, headers=[(b"authorization", b"Bearer t")])
    assert get(app)[1] == b'{"n": 2}'
    assert inner.calls == 2
