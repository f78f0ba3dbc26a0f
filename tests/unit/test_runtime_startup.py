"""The runtime's start-up order: the admin API waits for the ingress's first answer."""

from __future__ import annotations

import asyncio

import pytest
from durable.devtool.runtime import _first_answer

pytestmark = pytest.mark.timeout(10)


async def test_the_first_whole_response_of_the_ingress_is_noticed():
    answered = asyncio.Event()
    sent: list[dict] = []

    streaming: list[bool] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        streaming.append(answered.is_set())
        await send({"type": "http.response.body", "body": b"b"})

    async def send(message):
        sent.append(message)

    wrapped = _first_answer(app, answered)
    await wrapped({"type": "http"}, None, send)
    assert answered.is_set()
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2
    await wrapped({"type": "http"}, None, send)  # later requests pass straight through
    assert len(sent) == 6
    assert streaming == [False, True]  # a response still streaming is not an answer yet
