"""Typed journal payloads (durable.payloads): the same text as the journals hold.

``TODAY`` builds each kind's payload text exactly as the SDK and the engine wrote it
before the payload classes existed (the ``json.dumps`` expressions, copied); every
encoding must match it byte for byte, and decode back to the same payload, so stored
journals and the engine do not notice the classes.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import durable
import pytest
from durable import payloads as p
from durable.messages import EntryKind, Failure
from hypothesis import given, settings
from hypothesis import strategies as st
from test_executor import Driver, ok

pytestmark = pytest.mark.timeout(60)

text = st.text(max_size=20)
opt_text = st.none() | text
json_text = st.sampled_from(["null", "1", '"x"', '{"a": [1, 2]}', '"\\u00e9t\\u00e9"'])
headers = st.dictionaries(text, text, max_size=3)
ms = st.integers(min_value=0, max_value=10**13)
failure = st.builds(Failure, st.integers(min_value=100, max_value=599), text)
schema = st.none() | st.just({"type": "object", "properties": {"n": {"type": "integer"}}})


# -- how each payload was written before durable.payloads (kept verbatim)
def today_call(service, handler, key, arg_json, headers, idem, target):
    return json.dumps(
        {
            "service": service,
            "handler": handler,
            "key": key,
            "input": arg_json,
            "headers": headers or {},
            "idempotency_key": idem,
            "invocation_id": target,
        }
    )


def today_send(service, handler, key, arg_json, headers, idem, target, delay_ms):
    return json.dumps(
        {
            "service": service,
            "handler": handler,
            "key": key,
            "input": arg_json,
            "headers": headers or {},
            "idempotency_key": idem,
            "invocation_id": target,
            "delay_ms": delay_ms,
        }
    )


def today_sleep(ms: int) -> str:
    return json.dumps({"duration_ms": ms})


def today_sleep_recorded(ms: int, wake: int) -> str:  # the engine adds the due time
    return json.dumps({"duration_ms": ms, "wake_at": wake})


def today_awakeable(awk_id: str, schema: dict | None) -> str:
    payload = {"id": awk_id, **({"schema": schema} if schema else {})}
    return json.dumps(payload)


def today_resolve_awakeable(name: str, text: str) -> str:
    return json.dumps({"id": name, "result": text})


def today_reject_awakeable(name: str, code: int, message: str) -> str:
    return json.dumps({"id": name, "failure": {"code": code, "message": message}})


def today_get_promise(schema: dict | None) -> str | None:
    return json.dumps({"schema": schema}) if schema else None


def today_resolve_promise(text: str) -> str:
    return json.dumps({"result": text})


def today_reject_promise(code: int, message: str) -> str:
    return json.dumps({"failure": {"code": code, "message": message}})


def today_invocation(invocation_id: str) -> str:  # cancel and attach
    return json.dumps({"invocation_id": invocation_id})


def today_combinator(indexes: list[int]) -> str:
    return json.dumps({"futures": indexes})


# -- byte for byte, for every kind
@settings(max_examples=60, deadline=None)
@given(text, text, opt_text, json_text, headers, opt_text, text, ms)
def test_call_and_send_encode_as_today(service, handler, key, arg, hdrs, idem, target, delay):
    call = p.CallPayload(service, handler, key, arg, hdrs, idem, target)
    send = p.SendPayload(service, handler, key, arg, hdrs, idem, target, delay)
    assert p.encode(call) == today_call(service, handler, key, arg, hdrs, idem, target)
    assert p.encode(send) == today_send(service, handler, key, arg, hdrs, idem, target, delay)
    assert p.decode(EntryKind.CALL, p.encode(call)) == call
    assert p.decode(EntryKind.ONE_WAY_CALL, p.encode(send)) == send


@settings(max_examples=60, deadline=None)
@given(ms, ms, text, schema, json_text, failure)
def test_timer_awakeable_promise_payloads_encode_as_today(dur, wake, awk, sch, value, f):
    cases: list[tuple[p.Payload, str | None]] = [
        (p.SleepPayload(dur), today_sleep(dur)),
        (p.SleepPayload(dur, wake), today_sleep_recorded(dur, wake)),
        (p.AwakeablePayload(awk, sch), today_awakeable(awk, sch)),
        (p.CompleteAwakeablePayload(awk, result=value), today_resolve_awakeable(awk, value)),
        (
            p.CompleteAwakeablePayload(awk, failure=f),
            today_reject_awakeable(awk, f.code, f.message),
        ),
        (p.GetPromisePayload(sch), today_get_promise(sch)),
        (p.CompletePromisePayload(result=value), today_resolve_promise(value)),
        (p.CompletePromisePayload(failure=f), today_reject_promise(f.code, f.message)),
        (p.CancelPayload(awk), today_invocation(awk)),
        (p.AttachPayload(awk), today_invocation(awk)),
        (p.SetStatePayload(value), value),
        (p.InputPayload(value), value),
    ]
    for payload, today in cases:
        assert p.encode(payload) == today, payload
        assert p.decode(payload.kind, today) == payload, payload


@given(st.lists(st.integers(min_value=1, max_value=10**6), max_size=6))
def test_combinator_payload_encodes_as_today(indexes):
    payload = p.CombinatorPayload(tuple(indexes))
    assert p.encode(payload) == today_combinator(indexes)
    assert p.decode(EntryKind.COMBINATOR, today_combinator(indexes)) == payload


def test_kinds_without_a_payload_decode_to_none_and_every_class_names_its_kind():
    for kind in (EntryKind.TIME, EntryKind.GET_STATE, EntryKind.PEEK_PROMISE):
        assert p.payload_class(kind) is None
        assert p.decode(kind, None) is None
    for cls in (p.SleepPayload, p.RunPayload, p.CallPayload, p.SendPayload, p.CombinatorPayload):
        assert p.payload_class(cls.kind) is cls


def test_missing_fields_take_the_defaults_the_readers_used():
    assert p.decode(EntryKind.CALL, None) == p.CallPayload()
    assert p.decode(EntryKind.SLEEP, "{}") == p.SleepPayload(0, None)
    assert p.decode(EntryKind.ONE_WAY_CALL, '{"delay_ms": null}') == p.SendPayload()
    assert p.decode(EntryKind.COMBINATOR, "{}") == p.CombinatorPayload(None)


def test_text_that_is_not_an_object_says_which_entry_kind_it_was():
    with pytest.raises(ValueError, match="payload of a sleep entry is not a JSON object"):
        p.decode(EntryKind.SLEEP, "[1, 2]")


# -- what the executor emits for each kind is today's text
def _payloads(d: Driver) -> dict[tuple[EntryKind, str | None], str | None]:
    return {(e.kind, e.name): e.payload for e in d.entries}


async def test_a_service_handler_emits_todays_payload_text_for_each_kind():
    svc = durable.Service("Payloads")

    @svc.handler()
    async def callee(ctx: durable.Context, n: int) -> int:
        return n

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        handle = ctx.service_send(callee, 7, send_delay=timedelta(seconds=2), idempotency_key="k")
        ctx.generic_send("Other", "h", b'{"raw": true}', key="K", headers={"h": "v"})
        call = ctx.service_call(callee, 5, headers={"x-trace": "1"})
        awk_id, awk = ctx.awakeable(type_hint=int)
        ctx.resolve_awakeable("awk_other", {"ok": "ünï"})
        ctx.reject_awakeable("awk_third", "no", 418)
        ctx.cancel_invocation("inv_cancelled")
        attached = ctx.attach_invocation("inv_attached")
        await durable.select(call=call, awk=awk, nap=ctx.sleep(timedelta(milliseconds=1500)))
        del attached
        return f"{await handle.invocation_id()} {await call.invocation_id()} {awk_id}"

    d = Driver(go, suspend_after=60).start()
    await d.wait_entry(EntryKind.ATTACH_INVOCATION)
    call_entry = next(e for e in d.entries if e.kind is EntryKind.CALL)
    d.complete(call_entry.index, "5")
    await d.finish()
    send_id, call_id, awk_id = ok(d).split()
    got = _payloads(d)
    other_id = json.loads(got[(EntryKind.ONE_WAY_CALL, "Other/h")])["invocation_id"]
    assert got == {
        (EntryKind.ONE_WAY_CALL, "Payloads/callee"): today_send(
            "Payloads", "callee", None, "7", None, "k", send_id, 2000
        ),
        (EntryKind.ONE_WAY_CALL, "Other/h"): today_send(
            "Other", "h", "K", '{"raw": true}', {"h": "v"}, None, other_id, 0
        ),
        (EntryKind.CALL, "Payloads/callee"): today_call(
            "Payloads", "callee", None, "5", {"x-trace": "1"}, None, call_id
        ),
        (EntryKind.AWAKEABLE, None): today_awakeable(awk_id, {"type": "integer"}),
        (EntryKind.COMPLETE_AWAKEABLE, "awk_other"): today_resolve_awakeable(
            "awk_other", durable.serde.serialize({"ok": "ünï"})
        ),
        (EntryKind.COMPLETE_AWAKEABLE, "awk_third"): today_reject_awakeable("awk_third", 418, "no"),
        (EntryKind.CANCEL_INVOCATION, "inv_cancelled"): today_invocation("inv_cancelled"),
        (EntryKind.ATTACH_INVOCATION, "inv_attached"): today_invocation("inv_attached"),
        (EntryKind.SLEEP, None): today_sleep(1500),
        (EntryKind.COMBINATOR, "select"): today_combinator([3, 4, 9]),
    }


async def test_a_workflow_emits_todays_payload_text_for_promises_and_state():
    wf = durable.Workflow("PayloadFlow")

    @wf.main()
    async def run(ctx: durable.WorkflowContext) -> Any:
        ctx.set("n", {"a": 1})
        ctx.clear("gone")
        await ctx.promise("approved", type_hint=bool).resolve(True)
        await ctx.promise("denied").reject("nope", 409)
        await ctx.promise("peeked").peek()
        return await ctx.promise("approved", type_hint=bool).value()

    d = Driver(run, key="wf-1", state={}).start()
    results = {EntryKind.COMPLETE_PROMISE: None, EntryKind.PEEK_PROMISE: None}
    results[EntryKind.GET_PROMISE] = "true"
    completed: set[int] = set()
    assert d.task is not None
    while not d.task.done():  # the runtime's part: complete each promise entry
        for e in d.entries:
            if e.kind in results and e.index not in completed:
                completed.add(e.index)
                d.complete(e.index, results[e.kind])
        await asyncio.sleep(0.005)
    await d.finish()
    assert ok(d) is True
    by_index = [(e.kind, e.name, e.payload) for e in d.entries]
    assert by_index == [
        (EntryKind.SET_STATE, "n", durable.serde.serialize({"a": 1})),
        (EntryKind.CLEAR_STATE, "gone", None),
        (EntryKind.COMPLETE_PROMISE, "approved", today_resolve_promise("true")),
        (EntryKind.COMPLETE_PROMISE, "denied", today_reject_promise(409, "nope")),
        (EntryKind.PEEK_PROMISE, "peeked", None),
        (EntryKind.GET_PROMISE, "approved", today_get_promise({"type": "boolean"})),
    ]


def test_a_run_payload_is_the_body_duration_and_old_journals_have_none():
    text = p.run_payload_text(12.3456)
    assert text == '{"duration_ms": 12.346}'
    assert p.decode(EntryKind.RUN, text) == p.RunPayload(12.346)
    assert p.encode(p.RunPayload(12.346)) == text
    assert p.decode(EntryKind.RUN, None) == p.RunPayload(None)
    assert p.encode(p.RunPayload(None)) is None
    assert p.decode(EntryKind.RUN, '{"duration_ms": "x"}') == p.RunPayload(None)
