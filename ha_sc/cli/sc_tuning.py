"""The SC settings tree on the command line: ``--<group>-<field>`` flags and ``--config`` files.

Every field of ``ScTuning`` gets a flag (``spu_link.hold`` is ``--spu-link-hold``;
durations take units, ``750ms``). A config file is TOML whose keys are the field
paths (``[spu_link]`` then ``hold = 0.75``, or ``spu_link.hold = 0.75``); durations
there are seconds or strings with units (``"750ms"``). Flags override the file; an
unknown key is refused by name. ``render_toml`` writes the tree back as such a file.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic.fields import FieldInfo

from ha_sc.cli.duration import Duration, parse_seconds
from ha_sc.sc.tuning import ScTuning, is_duration, leaf_fields

TuningDocument = dict[str, dict[str, Any]]
"""The tree as nested tables: ``{"spu_link": {"hold": 0.75}}``; only the fields set."""

F = TypeVar("F", bound=Callable[..., Any])


class TuningFileError(ValueError):
    """A config file that cannot be read as the SC settings tree."""


def flag_name(group: str, name: str) -> str:
    """``--spu-link-hold`` for ``spu_link.hold``."""
    return f"--{group}-{name}".replace("_", "-")


def _dest(group: str, name: str) -> str:
    return f"tuning__{group}__{name}"


def _help(info: FieldInfo, default: object) -> str:
    text = " ".join((info.description or "").replace("``", "").split())
    return (
        f"{text}  [default: {default:g}{'s' if is_duration(info) else ''}]"
        if isinstance(default, float)
        else f"{text}  [default: {default}]"
    )


def _flag_type(info: FieldInfo) -> click.ParamType[Any]:
    if is_duration(info):
        return Duration()
    if info.annotation is int:
        return click.INT
    return click.FLOAT


def tuning_options(command: F) -> F:
    """Add a flag per field of the tree to a click command; the command receives the flags
    given as ``tuning_flags`` (a ``TuningDocument``). Put it right above the function."""

    @functools.wraps(command)
    def with_tuning(**kwargs: Any) -> Any:
        flags: TuningDocument = {}
        for group, name, _ in leaf_fields():
            value = kwargs.pop(_dest(group, name))
            if value is not None:
                flags.setdefault(group, {})[name] = value
        return command(**kwargs, tuning_flags=flags)

    decorated: Callable[..., Any] = with_tuning
    defaults = ScTuning()
    for group, name, info in reversed(leaf_fields()):
        decorated = click.option(
            flag_name(group, name),
            _dest(group, name),
            type=_flag_type(info),
            default=None,
            help=_help(info, getattr(getattr(defaults, group), name)),
        )(decorated)
    return decorated  # type: ignore[return-value]


def read_tuning_file(path: Path) -> TuningDocument:
    """The fields ``path`` sets; raises ``TuningFileError`` naming the file and the key."""
    try:
        with path.open("rb") as file:
            doc = tomllib.load(file)
    except OSError as cannot:
        raise TuningFileError(f"{path}: cannot read it: {cannot.strerror}") from None
    except tomllib.TOMLDecodeError as invalid:
        raise TuningFileError(f"{path}: not TOML: {invalid}") from None
    fields = {(group, name): info for group, name, info in leaf_fields()}
    groups = list(dict.fromkeys(group for group, _ in fields))
    result: TuningDocument = {}
    for group, table in doc.items():
        if group not in groups:
            raise TuningFileError(
                f"{path}: unknown key {group!r} (the settings groups: {', '.join(groups)})"
            )
        if not isinstance(table, dict):
            raise TuningFileError(f"{path}: {group!r} must be a table ([{group}]), not a value")
        for name, value in table.items():
            info = fields.get((group, name))
            if info is None:
                known = ", ".join(n for g, n in fields if g == group)
                raise TuningFileError(
                    f"{path}: unknown key '{group}.{name}' (the keys of [{group}]: {known})"
                )
            result.setdefault(group, {})[name] = _file_value(path, group, name, info, value)
    return result


def _file_value(path: Path, group: str, name: str, info: FieldInfo, value: object) -> object:
    if is_duration(info) and isinstance(value, str):
        try:
            return parse_seconds(value)
        except ValueError as invalid:
            raise TuningFileError(f"{path}: {group}.{name}: {invalid}") from None
    return value


def tuning_document(config: Path | None, flags: Mapping[str, Mapping[str, Any]]) -> TuningDocument:
    """The file's fields (if any) with the flags' over them."""
    merged = read_tuning_file(config) if config is not None else {}
    for group, values in flags.items():
        merged.setdefault(group, {}).update(values)
    return merged


def render_toml(tuning: ScTuning) -> str:
    """The whole tree as a config file ``--config`` reads back, each field with its
    docstring as a comment."""
    lines = ["# ha-sc SC settings (sc run --config FILE); durations in seconds"]
    defaults = ScTuning()
    current = None
    for group, name, info in leaf_fields():
        if group != current:
            current = group
            lines += ["", f"[{group}]"]
        value = getattr(getattr(tuning, group), name)
        lines += [f"# {line}" for line in _wrapped(info.description or "")]
        default = getattr(getattr(defaults, group), name)
        note = "" if value == default else f"  # default {default!r}"
        lines.append(f"{name} = {value!r}{note}")
    return "\n".join(lines) + "\n"


def _wrapped(text: str, width: int = 86) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
