"""JSON (de)serialization driven by type hints.

Plain JSON types, dataclasses (nested, with lists/dicts/optionals), Pydantic models and
msgspec Structs (when those are installed) round-trip with the same JSON shapes as
restate-sdk-python.
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
import inspect
import json
import math
import re
import sys
import types
import typing
from itertools import accumulate
from typing import Any, Generic, TypeVar

from .exceptions import TerminalError

__all__ = [
    "Serde",
    "JsonSerde",
    "DefaultSerde",
    "BytesSerde",
    "PydanticJsonSerde",
    "MsgspecJsonSerde",
    "check_serde",
    "encode_with",
    "decode_with",
    "decoder",
    "is_pydantic",
    "return_type",
    "serialize",
    "deserialize",
    "parse_strict",
    "check_text",
    "UnstorableValue",
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


def _msgspec_struct(tp: Any) -> Any:
    """msgspec, if ``tp`` is one of its Structs (msgspec is optional and never imported
    here: a Struct's module imported it already)."""
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return msgspec
    return None


def is_pydantic(tp: Any) -> bool:
    """Whether ``tp`` is a Pydantic model class (restate's name)."""
    return _is_pydantic_model(tp)


def _to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return value.model_dump(mode="json")
    msgspec = _msgspec_struct(type(value))
    if msgspec is not None:
        return _to_jsonable(msgspec.to_builtins(value))
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


def _from_jsonable(data: Any, tp: Any) -> Any:
    if tp is None or tp is Any or tp is typing.Any or tp is inspect_empty:
        return data
    if tp is _NONE_TYPE:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if data is None and _NONE_TYPE in args:
            return None
        for arg in args:
            if arg is _NONE_TYPE:
                continue
            try:
                return _from_jsonable(data, arg)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"value {data!r} matches none of {tp}")
    if origin is typing.Annotated:
        return _from_jsonable(data, typing.get_args(tp)[0])
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise ValueError(f"value {data!r} is not one of {typing.get_args(tp)}")
        return data
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if not isinstance(data, list):
            raise TypeError(f"expected a JSON array, got {type(data).__name__}")
        args = typing.get_args(tp)
        container = origin or tp
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_from_jsonable(d, a) for d, a in zip(data, args, strict=False))
        item = args[0] if args else Any
        return container(_from_jsonable(d, item) for d in data)
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _from_jsonable(v, vt) for k, v in data.items()}
    if _is_pydantic_model(tp):
        return tp.model_validate(data)
    msgspec = _msgspec_struct(tp)
    if msgspec is not None:
        try:
            return msgspec.convert(data, tp)
        except msgspec.ValidationError as e:
            raise ValueError(str(e)) from None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object for {tp.__name__}, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _from_jsonable(data[f.name], hints.get(f.name, Any))
        return tp(**kwargs)
    if tp is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if tp in (int, str, bool, float):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data
    if tp in (_dt.datetime, _dt.date, _dt.time):  # serialize() wrote isoformat()
        if not isinstance(data, str):
            raise TypeError(f"expected an ISO {tp.__name__} string, got {type(data).__name__}")
        return tp.fromisoformat(data)
    return data


class _Empty:
    pass


inspect_empty: Any = _Empty


def deserialize(text: str | bytes | None, tp: Any = None) -> Any:
    """Parse JSON text into a value of type ``tp`` (no type: plain JSON)."""
    data = None if text is None or text == "" or text == b"" else json.loads(text)
    return _from_jsonable(data, tp)


T = TypeVar("T")


class Serde(Generic[T]):
    """A serializer (restate-sdk-python's interface): ``serialize`` gives JSON text, as
    ``str`` or UTF-8 ``bytes``; ``deserialize`` gets what was stored.

    Give one as ``serde=`` (``ctx.run``, state, promises, awakeables) or as a handler's
    ``input_serde=``/``output_serde=``. durable's journal holds JSON text, so a serde must
    write JSON (a custom one is checked, and a TerminalError says so when it does not).
    Serdes of this module get ``str``; other ones get ``bytes``, as in restate.
    """

    def serialize(self, value: T | None) -> str | bytes:
        raise NotImplementedError

    def deserialize(self, text: Any) -> T | None:
        raise NotImplementedError


class JsonSerde(Serde[T]):
    """JSON serde for a type hint (the default): dataclasses, Pydantic models and msgspec
    Structs to and from their JSON shapes."""

    def __init__(self, type_hint: Any = None) -> None:
        self.type_hint = type_hint

    def serialize(self, value: Any) -> str:
        return serialize(value)

    def deserialize(self, text: str | bytes | None) -> Any:
        return deserialize(text, self.type_hint)

    def with_maybe_type(self, type_hint: Any = None) -> JsonSerde[Any]:
        """This serde for ``type_hint`` (restate's DefaultSerde API)."""
        return type(self)(type_hint) if type_hint is not None else self


class DefaultSerde(JsonSerde[T]):
    """restate's default: JSON by the type hint (as :class:`JsonSerde`)."""


class PydanticJsonSerde(JsonSerde[T]):
    """JSON for a Pydantic model (restate's name)."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)


class MsgspecJsonSerde(JsonSerde[T]):
    """JSON for a msgspec Struct (restate's name; needs ``durable[msgspec]``)."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)


class BytesSerde(Serde[bytes]):
    """Bytes as they are: the handler gets the request body's bytes, and its bytes are
    the response (durable's journal holds JSON, so they must be JSON text)."""

    def serialize(self, value: bytes | None) -> bytes:
        return b"" if value is None else bytes(value)

    def deserialize(self, text: str | bytes | None) -> bytes:
        if text is None:
            return b""
        return text.encode() if isinstance(text, str) else bytes(text)


_NATIVE = (JsonSerde, BytesSerde)


def check_serde(serde: Any, what: str) -> Serde[Any] | None:
    """A serde given as ``what``: None for the default, else it must have
    ``serialize`` and ``deserialize`` (InvalidUsageError naming ``what`` if not)."""
    if serde is None or type(serde) in (DefaultSerde, JsonSerde) and serde.type_hint is None:
        return None
    if not (
        callable(getattr(serde, "serialize", None))
        and callable(getattr(serde, "deserialize", None))
    ):
        from .exceptions import InvalidUsageError

        raise InvalidUsageError(
            f"{what}={serde!r} is not a serde: give an object with serialize(value) -> bytes "
            "and deserialize(bytes) -> value (a restate.serde.Serde)"
        )
    return serde  # type: ignore[no-any-return]


def encode_with(serde: Any, value: Any) -> str:
    """``value`` as JSON text through ``serde``; TerminalError when it is not JSON."""
    out = serde.serialize(value)
    if isinstance(out, str) and isinstance(serde, JsonSerde):
        return out
    name = type(serde).__name__
    if isinstance(out, (bytes, bytearray)):
        try:
            out = bytes(out).decode("utf-8")
        except UnicodeDecodeError:
            raise TerminalError(
                f"{name} wrote bytes that are not UTF-8 text: durable's journal holds JSON "
                "only; serialize to JSON (or run this handler on Restate)"
            ) from None
    if not isinstance(out, str):
        raise TerminalError(f"{name}.serialize returned {type(out).__name__}, not bytes")
    if out == "":
        return out
    try:
        parse_strict(out)
    except ValueError as e:
        raise TerminalError(
            f"{name} wrote {out[:40]!r}, which is not JSON ({e}): durable's journal holds "
            "JSON only; serialize to JSON (or run this handler on Restate)"
        ) from None
    return out


def decode_with(serde: Any, text: str | None) -> Any:
    """What ``serde`` makes of stored JSON text (bytes for serdes not of this module)."""
    if isinstance(serde, _NATIVE):
        return serde.deserialize(text)
    return serde.deserialize(b"" if text is None else text.encode())


def decoder(serde: Any) -> Any:
    """``decode_with`` bound to ``serde``: a one-argument converter."""
    return lambda text: decode_with(serde, text)


_RETURN_TYPES: dict[Any, Any] = {}


def _structured(tp: Any) -> bool:
    """Whether ``tp`` is (or holds) a dataclass, Pydantic model or msgspec Struct."""
    if tp is None:
        return False
    if _is_pydantic_model(tp) or _msgspec_struct(tp) is not None:
        return True
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return True
    return any(_structured(a) for a in typing.get_args(tp) if a is not Ellipsis)


def return_type(fn: Any) -> Any:
    """The return annotation of ``fn`` (coroutine functions: what they return), or None;
    how ``ctx.run`` types its result when no ``type_hint`` is given (as restate)."""
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    annotations = getattr(fn, "__annotations__", None)
    if not annotations or "return" not in annotations:
        return None  # lambdas and unannotated functions: the fast path
    key = getattr(fn, "__code__", fn)
    if key in _RETURN_TYPES:
        return _RETURN_TYPES[key]
    try:
        tp = typing.get_type_hints(inspect.unwrap(fn)).get("return")
    except Exception:  # an unresolvable forward reference: plain JSON
        tp = None
    if not _structured(tp):
        tp = None  # plain JSON, as restate (its DefaultSerde converts only these)
    if len(_RETURN_TYPES) > 4096:
        _RETURN_TYPES.clear()
    _RETURN_TYPES[key] = tp
    return tp


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
    msgspec = _msgspec_struct(tp)
    if msgspec is not None:
        return _inline_refs(msgspec.json.schema(tp))
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


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's schema puts the Struct under ``$defs`` with a ``$ref``: one object."""
    ref = schema.get("$ref", "")
    defs = schema.get("$defs", {})
    name = ref.rsplit("/", 1)[-1]
    if name in defs:
        out = dict(defs[name])
        if len(defs) > 1:
            out["$defs"] = defs
        return out
    return schema
