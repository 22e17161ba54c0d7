"""Typed ``key=value,key=value`` options (``--model-args``, ``--judge-args``, ``--task-args``).

Each model or task declares a dataclass; :func:`parse_options` checks every key against its fields and converts the
value to the field's type, so a typo is an error with the close matches rather than a silently ignored setting.
A JSON object is accepted too (``--model-args '{"layers": [1, 2]}'``), and so is a JSON list/number as a value.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from pathlib import Path
from typing import Any
from most_eval.core.errors import MostEvalError


class OptionError(MostEvalError, ValueError):
    """A bad option string; one line."""


def split_pairs(text: str) -> dict[str, str]:
    """``"a=1,b=x"`` -> {"a": "1", "b": "x"}; values may contain ``=``; brackets keep commas inside JSON lists."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(text).items()}
        except json.JSONDecodeError as exc:
            raise OptionError(f"options {text!r} are not valid JSON: {exc.msg}") from None
    pairs, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            pairs.append(current)
            current = ""
        else:
            current += ch
    pairs.append(current)
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise OptionError(f"option {pair!r} is not key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _convert(value: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _convert(value, args[0], key)
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind in (int, float):
            return kind(value)
        if kind is Path:
            return Path(value).expanduser()
        if origin in (list, tuple, dict) or kind in (list, dict):
            return json.loads(value)
    except (ValueError, json.JSONDecodeError):
        raise OptionError(f"option {key}={value!r}: expected {getattr(kind, '__name__', kind)}") from None
    return value


def parse_options(text: str | dict | None, cls: type, what: str = "option") -> Any:
    """Build ``cls`` (a dataclass) from ``text``; unknown keys and bad values raise OptionError."""
    raw = dict(text) if isinstance(text, dict) else split_pairs(text or "")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            known = ", ".join(fields) or "none"
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {known}"
            raise OptionError(f"unknown {what} {key!r}; {hint}")
        values[key] = _convert(value, hints[key], key) if isinstance(value, str) else value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # dataclasses validate their values in __post_init__
        raise OptionError(f"{what.split(' key')[0]}: {exc}") from None
