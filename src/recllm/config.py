"""Nested dataclass configs from YAML files and ``key=value`` overrides.

A recipe config is a dataclass whose fields may be dataclasses themselves. YAML gives
the values, ``section.key=value`` overrides replace single leaves (values are parsed as
YAML scalars, so ``lr=3e-4`` is a float and ``use_metadata=false`` a bool). Unknown
keys and ill-typed values are user errors: every problem is collected into one
:class:`~recllm.errors.ConfigError` that names the key, what was given and what is
allowed. Each dataclass's own ``__post_init__`` still checks its value ranges.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from recllm.errors import ConfigError

T = TypeVar("T")
MAX_SEED = 2**32 - 1  # NumPy's seeds are unsigned 32-bit


def run_settings_problems(seed: int, num_threads: int | None = None) -> list[str]:
    """Range problems of the settings every recipe shares: a seed NumPy accepts and a
    positive thread count (None: torch's default)."""
    problems = []
    if not 0 <= seed <= MAX_SEED:
        problems.append(f"seed must be in 0..{MAX_SEED}, got {seed}")
    if num_threads is not None and num_threads < 1:
        problems.append(
            f"num_threads must be >= 1 (or null for torch's default), got {num_threads}"
        )
    return problems


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a file, with a clear error for anything else."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not a YAML text file (binary content at byte {exc.start})"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping of keys to values, found {type(data).__name__}"
        )
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` leaves in a nested dict (a copy); values parsed as YAML."""
    result = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=3e-4)")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"override {item!r}: cannot parse the value ({_one_line(exc)})"
            ) from exc
    return result


def _one_line(exc: Exception) -> str:
    """A multi-line parser message folded into one line."""
    return " ".join(str(exc).split())


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def lenient_from_dict(cls: type[T], values: dict[str, Any], what: str) -> T:
    """Build a flat config saved by another version: unknown keys are ignored with a
    warning (so old and new checkpoints interoperate), unlike user configs."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        logging.getLogger(__name__).warning("%s: ignoring unknown keys %s", what, unknown)
    return cls(**{k: v for k, v in values.items() if k in known})


def load_saved_config(folder: Path, filename: str, cls: type[T], what: str) -> T:
    """Read a config a model saved next to its weights (``folder/filename``, JSON).

    A missing file says the folder is not a saved ``what``; bad JSON names the file;
    unknown keys are ignored with a warning (see :func:`lenient_from_dict`)."""
    path = Path(folder) / filename
    if not path.is_file():
        raise ConfigError(f"{folder} holds no {filename}: not a saved {what}")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from exc
    return lenient_from_dict(cls, values, f"{what} config")


def save_config(folder: Path, filename: str, config: Any) -> None:
    """Write a flat dataclass config as JSON next to a model's weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from nested dicts, reporting every problem at once."""
    problems: list[str] = []
    result = _build(cls, data, "", problems)
    ConfigError.collect(cls.__name__, problems)
    return result


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix or 'config'}: expected a mapping, got {data!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    for key in unknown:
        problems.append(f"{prefix}{key}: unknown key; allowed: {sorted(fields)}")
    values: dict[str, Any] = {}
    section_failed = False
    for name, value in data.items():
        if name not in fields:
            continue
        hint = _optional_dataclass(hints[name]) if value is not None else hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{prefix}{name}.", problems)  # type: ignore[arg-type]
            section_failed |= values[name] is None
        else:
            converted = _convert(value, hint)
            if converted is _INVALID:
                problems.append(f"{prefix}{name}: expected {_describe(hint)}, got {value!r}")
            else:
                values[name] = converted
    if section_failed:  # its problems are listed; checks across sections would meet None
        return None
    try:
        return cls(**values)
    except ConfigError as exc:
        # Range checks of the dataclass itself: one problem per line after the header.
        problems.extend(f"{prefix}{line.strip()[2:]}" for line in str(exc).splitlines()[1:])
    except TypeError as exc:
        problems.append(f"{prefix or 'config'}: {exc}")
    return None


_INVALID = object()


def _optional_dataclass(hint: Any) -> Any:
    """``SomeConfig | None`` -> ``SomeConfig`` (a nested section that may be absent)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        classes = [a for a in args if dataclasses.is_dataclass(a)]
        if len(classes) == 1:
            return classes[0]
    return hint


def _convert(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            converted = _convert(value, arg)
            if converted is not _INVALID:
                return converted
        return _INVALID
    if origin is typing.Literal:
        return value if value in args else _INVALID
    if hint is Any:
        return value
    if hint is bool:
        return value if isinstance(value, bool) else _INVALID
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 reads "3e-4" (no dot) as a string; accept what float() accepts.
            try:
                number = float(value)
            except ValueError:
                return _INVALID
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            return _INVALID
        # NaN passes every range check (all comparisons are false): no setting takes it
        return number if math.isfinite(number) else _INVALID
    if hint is str:
        return value if isinstance(value, str) else _INVALID
    if hint is Path:
        return Path(value) if isinstance(value, str | Path) else _INVALID
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return _INVALID
        inner = args[0] if args else Any
        items = [_convert(v, inner) for v in value]
        if any(i is _INVALID for i in items):
            return _INVALID
        return tuple(items) if origin is tuple else items
    if origin is dict:
        return value if isinstance(value, dict) else _INVALID
    return value


def _describe(hint: Any) -> str:
    if hint is float:
        return "float (finite)"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON/YAML-ready dict of a (nested) dataclass config."""

    def clean(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return clean(dataclasses.asdict(config))
