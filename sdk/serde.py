"""JSON (de)serialization driven by type hints.

Plain JSON types, dataclasses (nested, with lists/dicts/optionals) and Pydantic models
(when Pydantic is installed) round-trip with the same JSON shapes as restate-sdk-python.
Values travel as JSON text (``str``).

Whatever the serde writes, or accepts with :func:`parse_strict`, DuckDB can store and
any JSON reader can read back: no lone UTF-16 surrogate in a string or a key (``"\\ud800"``
decodes to one, and DuckDB cannot encode it as UTF-8), no ``NaN`` or ``Infinity`` (not
JSON; ``1e400`` reads as infinity), and no nesting deeper than :data:`MAX_DEPTH` arrays
and objects (Python's own JSON reader fails past ~1,000 levels, and every recursive walk
over the value sooner). Such a value raises :class:`UnstorableValue`, a
:class:`~durable.exceptions.TerminalError` (retrying cannot fix it) that is also a
``ValueError``. The checks cost a ``str.isascii`` and a ``str.count`` or two for an
ordinary value; the slower scans run only when those say they may find something.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
import types
import typing
from itertools import accumulate
from typing import Any

from .exceptions import TerminalError

__all__ = [
    "Serde",
    "JsonSerde",
    "serialize",
    "deserialize",
    "parse_strict",
    "check_text",
    "UnstorableValue",
    "InputError",
    "MAX_DEPTH",
    "type_name",
    "json_schema",
]

_NONE_TYPE = type(None)

#: How deep arrays and objects may nest in a stored value.
MAX_DEPTH = 100


class UnstorableValue(TerminalError, ValueError):
    """A value the journal cannot store (see the module docstring); status 400 when the
    value came from a caller, 500 when a handler produced it."""

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(message, status_code)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings skipped)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise UnstorableValue(
            f"the value nests arrays and objects more than {MAX_DEPTH} levels deep: "
            "flatten it (store deep trees as a list of rows, or as a string)"
        )


def _surrogate_message(where: str) -> str:
    return (
        f"{where} holds a lone UTF-16 surrogate (like \\ud800), which is not text and "
        "cannot be stored: send valid Unicode (a surrogate pair for characters beyond "
        "U+FFFF, or the character itself in UTF-8)"
    )


def check_text(text: str, what: str = "the text") -> str:
    """``text`` itself if it can be stored as UTF-8 (no lone surrogate), else
    :class:`UnstorableValue` (status 400) naming ``what``."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableValue(_surrogate_message(what), 400) from None
    return text


def _reject_constant(name: str) -> Any:
    raise UnstorableValue(f"{name} is not JSON: send a number, null or a string", 400)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnstorableValue(
            f"the number {text[:40]} is too large for a 64-bit float: send it as a string", 400
        )
    return value


def _is_pydantic_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def _to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_to_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(
        f"cannot serialize a value of type {type(value).__name__} to JSON: use JSON types, "
        "a dataclass or a Pydantic model"
    )


def serialize(value: Any) -> str:
    """Turn a value into JSON text; :class:`UnstorableValue` if the journal could not
    store it (a NaN or infinite float, a lone surrogate, nesting past MAX_DEPTH)."""
    try:
        data = _to_jsonable(value)
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise UnstorableValue(
            f"the value nests more than {MAX_DEPTH} levels deep (or refers to itself)"
        ) from None
    except ValueError as e:
        if "JSON compliant" not in str(e):  # not json's NaN refusal: not ours to rename
            raise
        raise UnstorableValue(
            "cannot store a NaN or infinite float (not JSON): use None or a string"
        ) from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableValue(_surrogate_message("a string in the value")) from None
    if len(text) > 2 * MAX_DEPTH:
        _check_depth(text)
    return text


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_strict(text: str) -> Any:
    """Parse JSON text that came from outside (a request body), refusing with
    :class:`UnstorableValue` (status 400) what :func:`serialize` would not write, and
    with ``ValueError`` text that is not JSON."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise UnstorableValue(f"the value nests more than {MAX_DEPTH} levels deep", 400) from None
    # The text is valid JSON from here on, so the scans below take linear time.
    if len(text) > 2 * MAX_DEPTH:
        try:
            _check_depth(text)
        except UnstorableValue as e:
            e.status_code = 400
            raise
    if not text.isascii():
        check_text(text, "the JSON text")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:  # a surrogate pair decodes to one character; a lone one stays a surrogate
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableValue(_surrogate_message("a string or key in the JSON"), 400) from None
    return value


class InputError(TypeError, ValueError):
    """A JSON value that does not fit its type hint, with every error's field path, in
    the style of pydantic: ``2 validation errors for Order: id: field required;
    items.0.qty: expected an integer, got str``. ``errors`` holds ``(path, message)``."""

    def __init__(self, title: str, errors: list[tuple[str, str]]) -> None:
        self.title = title
        self.errors = errors
        n = len(errors)
        shown = "; ".join(f"{p}: {m}" if p else m for p, m in errors[:10])
        more = f"; and {n - 10} more" if n > 10 else ""
        super().__init__(f"{n} validation error{'s' if n != 1 else ''} for {title}: {shown}{more}")


class _Invalid(Exception):
    """Errors found under one value: ``(location, message)`` pairs, each location a
    tuple of keys and indexes from that value down."""

    def __init__(self, errors: list[tuple[tuple[Any, ...], str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _fail(message: str) -> _Invalid:
    return _Invalid([((), message)])


_KIND = {int: "an integer", str: "a string", bool: "a boolean", float: "a number"}


def _json_kind(data: Any) -> str:
    return {dict: "object", list: "array", type(None): "null"}.get(type(data), type(data).__name__)


def _each(items: Any, convert: Any) -> list[Any]:
    """Convert ``(location, data, type)`` items, gathering every item's errors."""
    out, errors = [], []
    for loc, data, tp in items:
        try:
            out.append(convert(data, tp))
        except _Invalid as e:
            errors += [((loc, *sub), m) for sub, m in e.errors]
    if errors:
        raise _Invalid(errors)
    return out


def _from_jsonable(data: Any, tp: Any, strict: bool = False) -> Any:
    try:
        return _convert(data, tp, strict)
    except _Invalid as e:
        raise InputError(
            type_name(tp), [(".".join(str(x) for x in loc), m) for loc, m in e.errors]
        ) from None


def _convert(data: Any, tp: Any, strict: bool = False) -> Any:
    if tp is None or tp is Any or tp is typing.Any or tp is inspect_empty:
        return data
    if tp is _NONE_TYPE:
        if data is not None:
            raise _fail(f"expected null, got {_json_kind(data)}")
        return None

    def conv(d: Any, t: Any) -> Any:
        return _convert(d, t, strict)

    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if data is None and _NONE_TYPE in args:
            return None
        for arg in args:
            if arg is _NONE_TYPE:
                continue
            try:
                return conv(data, arg)
            except (_Invalid, TypeError, ValueError):
                continue
        raise _fail(f"{_json_kind(data)} matches none of {type_name(tp)}")
    if origin is typing.Annotated:
        return conv(data, typing.get_args(tp)[0])
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise _fail(f"value {data!r} is not one of {typing.get_args(tp)}")
        return data
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if not isinstance(data, list):
            raise _fail(f"expected a JSON array, got {_json_kind(data)}")
        args = typing.get_args(tp)
        container = origin or tp
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_each(zip(range(len(args)), data, args, strict=False), conv))
        item = args[0] if args else Any
        return container(_each(((i, d, item) for i, d in enumerate(data)), conv))
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            raise _fail(f"expected a JSON object, got {_json_kind(data)}")
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return dict(zip(data, _each(((k, v, vt) for k, v in data.items()), conv), strict=True))
    if _is_pydantic_model(tp):
        try:
            return tp.model_validate(data)
        except ValueError as e:  # pydantic's ValidationError: keep its locations
            if not hasattr(e, "errors"):
                raise _fail(str(e)) from None
            raise _Invalid([(tuple(x["loc"]), x["msg"].lower()) for x in e.errors()]) from None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(data, tp, strict, conv)
    if tp is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if tp in (int, str, bool, float):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise _fail(f"expected {_KIND[tp]}, got {_json_kind(data)}")
        return data
    if tp in (_dt.datetime, _dt.date, _dt.time):  # serialize() wrote isoformat()
        if not isinstance(data, str):
            raise _fail(f"expected an ISO {tp.__name__} string, got {_json_kind(data)}")
        try:
            return tp.fromisoformat(data)
        except ValueError as e:
            raise _fail(str(e)) from None
    return data


def _dataclass(data: Any, tp: type, strict: bool, conv: Any) -> Any:
    if not isinstance(data, dict):
        raise _fail(f"expected a JSON object, got {_json_kind(data)}")
    hints = typing.get_type_hints(tp)
    fields = [f for f in dataclasses.fields(tp) if f.init]
    names = {f.name for f in fields}
    errors: list[tuple[tuple[Any, ...], str]] = []
    items = []
    for f in fields:
        if f.name in data:
            items.append((f.name, data[f.name], hints.get(f.name, Any)))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(((f.name,), "field required"))
    if strict:
        known = ", ".join(f.name for f in fields)
        errors += [((k,), f"unknown field (fields: {known})") for k in data if k not in names]
    try:
        values = _each(items, conv)
    except _Invalid as e:
        errors += e.errors
    if errors:
        order = {f.name: i for i, f in enumerate(fields)}
        errors.sort(key=lambda x: order.get(x[0][0], len(order)) if x[0] else -1)
        raise _Invalid(errors)
    return tp(**{name: v for (name, _d, _t), v in zip(items, values, strict=True)})


class _Empty:
    pass


inspect_empty: Any = _Empty


def deserialize(text: str | bytes | None, tp: Any = None, strict: bool = False) -> Any:
    """Parse JSON text into a value of type ``tp`` (no type: plain JSON).

    A value that does not fit raises :class:`InputError` naming every field path;
    ``strict`` (a handler's input) also refuses fields a dataclass does not have.
    """
    data = None if text is None or text == "" or text == b"" else json.loads(text)
    return _from_jsonable(data, tp, strict)


class Serde:
    """Interface of a serializer, for ``ctx.run(..., serde=)`` (restate-sdk-python name)."""

    def serialize(self, value: Any) -> str:
        raise NotImplementedError

    def deserialize(self, text: str | None) -> Any:
        raise NotImplementedError


class JsonSerde(Serde):
    """JSON serde for a type hint (the default)."""

    def __init__(self, type_hint: Any = None) -> None:
        self.type_hint = type_hint

    def serialize(self, value: Any) -> str:
        return serialize(value)

    def deserialize(self, text: str | None) -> Any:
        return deserialize(text, self.type_hint)


def type_name(tp: Any) -> str:
    """A readable name for a type hint."""
    if tp is None or tp is inspect_empty:
        return "any"
    if tp is _NONE_TYPE:
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def json_schema(tp: Any) -> dict[str, Any]:
    """A JSON schema for a type hint (best effort; used for forms and OpenAPI)."""
    if tp is None or tp is inspect_empty or tp is Any:
        return {}
    if tp is _NONE_TYPE:
        return {"type": "null"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in simple:
        return {"type": simple[tp]}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [json_schema(a) for a in args]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        return {"type": "array", "items": json_schema(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if _is_pydantic_model(tp):
        schema: dict[str, Any] = tp.model_json_schema()
        return schema
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        props = {f.name: json_schema(hints.get(f.name)) for f in dataclasses.fields(tp)}
        for f in dataclasses.fields(tp):  # defaults as pydantic shows them (forms start there)
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            if default is not dataclasses.MISSING:
                try:
                    props[f.name]["default"] = json.loads(json.dumps(_to_jsonable(default)))
                except (TypeError, ValueError):
                    pass  # a default JSON cannot show
        required = [
            f.name
            for f in dataclasses.fields(tp)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        return {"type": "object", "title": tp.__name__, "properties": props, "required": required}
    return {}
