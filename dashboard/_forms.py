"""Forms from JSON schemas: the invoke form of a handler and the prefilled JSON editors.

A handler's input schema (from its type hints, see ``durable.serde.json_schema``) gives
the fields: an object's properties become one field each (text, number, checkbox,
select for enums, a JSON editor for nested values); a scalar becomes one field; any
other shape gets one JSON editor prefilled with a skeleton of the type. The form's
values come back as JSON with :func:`value_from_form`, which says which field is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable.serde import UnstorableValue, parse_strict

__all__ = ["Field", "InputForm", "input_form", "skeleton", "skeleton_json", "value_from_form"]

_MAX_DEPTH = 6


@dataclass(frozen=True)
class Field:
    """One input of a generated form."""

    name: str  # the form field's name
    label: str
    widget: str  # text | integer | number | checkbox | select | json
    type_label: str
    required: bool = False
    initial: str = ""
    options: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class InputForm:
    """How a handler's input is asked for: no input, fields of an object, one value."""

    mode: str  # none | object | value
    fields: tuple[Field, ...] = ()
    skeleton: str = "null"  # the whole input as JSON text, for the raw-JSON editor
    schema: dict = field(default_factory=dict)


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> dict:
    """Follow a local ``$ref`` (``#/$defs/X`` or ``#/definitions/X``)."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and depth < _MAX_DEPTH:
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _resolve(merged, root, depth + 1)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(
            {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}},
            root,
            depth + 1,
        )
    return schema


def _optional_of(schema: dict, root: Mapping[str, Any]) -> dict | None:
    """X for ``anyOf: [X, null]`` (an Optional[X] hint), else None."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if not isinstance(options, list):
        return None
    non_null = [o for o in options if _resolve(o, root).get("type") != "null"]
    if len(non_null) == 1 and len(options) == 2:
        return _resolve(non_null[0], root)
    return None


def _type_of(schema: dict) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


def skeleton(schema: Any, root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A value of the schema's shape to start editing from: its default or example when
    it gives one, else empty strings, zeros, false, [] and objects of those."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    s = _resolve(schema, root)
    if not s or depth > _MAX_DEPTH:
        return None
    if "default" in s:
        return s["default"]
    if isinstance(s.get("examples"), list) and s["examples"]:
        return s["examples"][0]
    if "const" in s:
        return s["const"]
    if isinstance(s.get("enum"), list) and s["enum"]:
        return s["enum"][0]
    inner = _optional_of(s, root)
    if inner is not None:
        return skeleton(inner, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        if isinstance(s.get(key), list) and s[key]:
            return skeleton(s[key][0], root, depth + 1)
    t = _type_of(s)
    if t == "string":
        return ""
    if t in ("integer", "number"):
        return s.get("minimum", 0)
    if t == "boolean":
        return False
    if t == "null":
        return None
    if t == "array":
        return []
    if t == "object" or "properties" in s:
        props = s.get("properties") or {}
        return {k: skeleton(v, root, depth + 1) for k, v in props.items()}
    return None


def skeleton_json(schema: Any) -> str:
    """:func:`skeleton` as pretty JSON text ('null' without a schema)."""
    return json.dumps(skeleton(schema), indent=2, ensure_ascii=False)


def _type_label(s: dict, root: Mapping[str, Any]) -> str:
    inner = _optional_of(s, root)
    if inner is not None:
        return _type_label(inner, root) + " | null"
    if isinstance(s.get("enum"), list):
        return " | ".join(json.dumps(v) for v in s["enum"])
    t = _type_of(s)
    if t == "array":
        items = _resolve(s.get("items", {}), root)
        return f"list[{_type_label(items, root) if items else 'any'}]"
    if t == "object" and s.get("title"):
        return str(s["title"])
    return t or str(s.get("title") or "any")


def _field(name: str, label: str, s: dict, root: Mapping[str, Any], required: bool) -> Field:
    inner = _optional_of(s, root)
    base = inner if inner is not None else s
    if inner is not None:
        required = False
    label_t = _type_label(s, root)
    desc = str(s.get("description") or base.get("description") or "")
    default = base.get("default", s.get("default"))
    if isinstance(base.get("enum"), list) and base["enum"]:
        opts = tuple(json.dumps(v) for v in base["enum"])
        initial = json.dumps(default) if default is not None else opts[0]
        return Field(name, label, "select", label_t, required, initial, opts, desc)
    t = _type_of(base)
    if t == "string":
        return Field(
            name,
            label,
            "text",
            label_t,
            required,
            "" if default is None else str(default),
            (),
            desc,
        )
    if t in ("integer", "number"):
        return Field(
            name, label, t, label_t, required, "" if default is None else str(default), (), desc
        )
    if t == "boolean":
        return Field(name, label, "checkbox", label_t, False, "true" if default else "", (), desc)
    initial = json.dumps(
        default if default is not None else skeleton(base, root), indent=2, ensure_ascii=False
    )
    if inner is not None and default is None:
        initial = ""
    return Field(name, label, "json", label_t, required, initial, (), desc)


def input_form(schema: dict | None, has_input: bool = True) -> InputForm:
    """The form for a handler whose input has JSON schema ``schema``."""
    if not has_input:
        return InputForm("none")
    schema = schema or {}
    root = schema
    s = _resolve(schema, root)
    sk = json.dumps(skeleton(s, root), indent=2, ensure_ascii=False)
    props = s.get("properties")
    if _type_of(s) == "object" and isinstance(props, dict) and props:
        required = set(s.get("required") or [])
        fields = tuple(
            _field(f"f.{name}", name, _resolve(p, root), root, name in required)
            for name, p in props.items()
        )
        return InputForm("object", fields, sk, schema)
    return InputForm("value", (_field("value", "input", s, root, True),), sk, schema)


def _parse(f: Field, text: str | None) -> tuple[bool, Any]:
    """(present, value) of one field; ValueError says what is wrong."""
    if f.widget == "checkbox":
        return True, text is not None and text not in ("", "false", "off")
    text = "" if text is None else text
    if f.widget == "text":
        if text == "" and not f.required:
            return False, None
        return True, text
    if text.strip() == "":
        if f.required:
            raise ValueError(f"{f.label}: a value is required ({f.type_label})")
        return False, None
    if f.widget == "integer":
        try:
            if len(text.strip()) > 40:
                raise ValueError
            return True, int(text.strip())
        except ValueError:
            raise ValueError(f"{f.label}: {text!r} is not an integer") from None
    if f.widget == "number":
        try:
            n = float(text.strip())
        except ValueError:
            raise ValueError(f"{f.label}: {text!r} is not a number") from None
        if not math.isfinite(n):
            raise ValueError(f"{f.label}: {text!r} is not a finite number (JSON has no NaN)")
        return True, int(n) if n.is_integer() and "." not in text and "e" not in text.lower() else n
    return True, _json(text, f.label)


def _json(text: str, label: str) -> Any:
    try:
        return parse_strict(text)
    except UnstorableValue as e:
        raise ValueError(f"{label}: {e.message}") from None
    except ValueError as e:
        raise ValueError(f"{label}: not valid JSON ({e})") from None


def value_from_form(form: InputForm, data: Mapping[str, Any]) -> Any:
    """The input value a submitted form describes. A non-empty ``raw_json`` wins over
    the fields. Raises ValueError naming the field at fault."""
    raw = str(data.get("raw_json") or "").strip()
    if raw:
        return _json(raw, "raw JSON")
    if form.mode == "none":
        return None
    if form.mode == "value":
        present, value = _parse(form.fields[0], data.get("value"))
        return value if present else None
    out: dict[str, Any] = {}
    for f in form.fields:
        present, value = _parse(f, data.get(f.name))
        if present:
            out[f.label] = value
    return out
