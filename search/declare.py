"""Options declared once. A command's options are a dataclass; each of its fields is declared with an
`Option`: its help, its group, the check that refuses a bad value, and where it differs from `--field-name`
its flag. The field itself gives the name, the type and the default. The command line is built from those
declarations (`add_options`) and what it parses becomes the dataclass (`parsed`); code that builds the options
itself meets the same checks (`Options.__post_init__`).

Built on argparse, from the dataclass's own fields, rather than with a library made for it: litgpt builds its
CLI with jsonargparse from function signatures and dataclasses, which reads types and docstrings but brings a
dependency of its own, errors of several lines and help laid out its way; what hpsearch needs of it (a type, a
default, a check, a group per option) is a few lines over argparse, whose help and errors its users know."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from trainers.errors import InputError

OPTION = "hpsearch.option"  # where a field's metadata keeps its Option


@dataclass(frozen=True)
class Option:
    help: str  # "%(default)s" in it says the default
    group: str | None = None  # the heading it is listed under in -h
    flag: str | None = None  # None: --the-field-name
    check: Callable[[Any], None] | None = None  # raises InputError, saying what a value must be
    parse: Callable[[str], Any] | None = None  # text to value, where the field's type does not say how (2,3 -> [2, 3])
    choices: Callable[[], Sequence] | Sequence | None = None  # a callable: read when the parser is built (a registry)
    metavar: str | None = None
    positional: bool = False
    shown: str = "changed"  # in the command line that runs a study again: "always", "changed" (from its default), "never"
    each: Callable[[], dict[str, Option]] | None = None  # a dict field: a flag per key, each declared by its own Option
    env: str | None = None  # the environment variable that gives the default, where it is set (a container, a batch job)

    @property
    def text(self) -> str:
        """Its help, as -h says it."""
        return self.help + (f"; ${self.env} sets the default" if self.env else "")

    def field(self, default: Any = MISSING, **changes) -> Any:
        """A dataclass field declared by this option (with `changes`: the same option, its help changed, say)."""
        option = dataclasses.replace(self, **changes)
        factory = isinstance(default, (list, dict))
        return field(**({"default_factory": lambda: type(default)(default)} if factory else {"default": default}),
                     metadata={OPTION: option})


def option(help: str, default: Any = MISSING, **options) -> Any:
    """A field declared as an option of its dataclass's command."""
    return Option(help, **options).field(default)


class Options:
    """The base of a command's options: values given in code meet the checks the command line applies."""

    def __post_init__(self):
        for f, declared in declared_fields(type(self)):
            for flag, each, value in _values(f, declared, getattr(self, f.name)):
                if each.check and value is not None and value is not False:
                    try:
                        each.check(value)
                    except InputError as err:
                        raise InputError(f"{flag} {value}: {err}") from None


def _values(f: dataclasses.Field, declared: Option, value: Any) -> list[tuple[str, Option, Any]]:
    """(flag, option, value) of a field: one, or one per key of a dict field declared `each`."""
    if not declared.each:
        return [(flag_of(f, declared), declared, value)]
    options = declared.each()
    unknown = sorted(set(value) - set(options))
    if unknown:
        raise InputError(f"{f.name}: no option {unknown[0]!r}; there are {', '.join(options)}")
    return [(each.flag, each, value.get(key)) for key, each in options.items()]


def command_line(options: Options) -> list[str]:
    """The flags that give these options again: each declared option as it says (`shown`), a list's items
    comma-separated, floats as short as they go."""
    words = []
    for f, declared in declared_fields(type(options)):
        default = _default(f)
        for flag, each, value in _values(f, declared, getattr(options, f.name)):
            if declared.shown == "never" or value is None or value is False or (
                    declared.shown == "changed" and not declared.each and value == default):
                continue
            words += [flag] if value is True else [_text(value)] if declared.positional else [flag, _text(value)]
    return words


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) else str(value)


def declared_fields(cls: type) -> list[tuple[dataclasses.Field, Option]]:
    return [(f, f.metadata[OPTION]) for f in fields(cls) if OPTION in f.metadata]


def flag_of(f: dataclasses.Field, declared: Option) -> str:
    return declared.flag or "--" + f.name.replace("_", "-")


def _kind(annotation) -> tuple[type, bool]:
    """The type of one value of a field, and whether the field holds a list of them."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _parser(parse: Callable[[str], Any], check: Callable[[Any], None] | None) -> Callable[[str], Any]:
    """argparse's type: the text parsed, then checked; a refusal is argparse's one-line error naming the flag."""

    def typed(text: str):
        try:
            value = parse(text)
            if check:
                check(value)
            return value
        except InputError as err:
            raise argparse.ArgumentTypeError(f"{err}, not {text}") from None

    typed.__name__ = getattr(parse, "__name__", "value")  # argparse names it in its own errors ("invalid int value")
    return typed


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """The command line of `cls`'s declared fields: each field's flag (dest: the field's name), grouped as declared."""
    hints = typing.get_type_hints(cls)
    groups = {title: parser.add_argument_group(title) for title in getattr(cls, "GROUPS", ())}  # in the order a class gives
    for f, declared in declared_fields(cls):
        where = parser
        if declared.group:
            if declared.group not in groups:
                groups[declared.group] = parser.add_argument_group(declared.group)
            where = groups[declared.group]
        if declared.each:
            for key, each in declared.each().items():
                where.add_argument(each.flag, dest=f"{f.name}:{key}", help=each.help, metavar=each.metavar,
                                   type=_parser(each.parse, each.check))
            continue
        kind, many = _kind(hints[f.name])
        default = os.environ.get(declared.env, _default(f)) if declared.env else _default(f)
        choices = declared.choices() if callable(declared.choices) else declared.choices
        settings = {"help": declared.text, "metavar": declared.metavar, "choices": choices}
        if kind is bool:
            settings |= {"action": "store_true", "default": default}
        else:
            parse = declared.parse or kind
            settings |= {"type": _parser(parse, declared.check) if declared.check or declared.parse else parse}
            if many and not declared.parse:
                settings |= {"nargs": "+"} if declared.positional else {"action": "append", "default": default}
            elif not declared.positional:
                settings |= {"default": default}
        settings = {k: v for k, v in settings.items() if v is not None or k == "default"}
        if declared.positional:
            where.add_argument(f.name, **settings)
        else:
            where.add_argument(flag_of(f, declared), dest=f.name, required=f.default is MISSING and f.default_factory is MISSING,
                               **settings)


def parsed(cls: type, namespace: argparse.Namespace):
    """The options `cls` of what the command line parsed."""
    values = {}
    for f, declared in declared_fields(cls):
        if declared.each:
            given = {key: getattr(namespace, f"{f.name}:{key}") for key in declared.each()}
            values[f.name] = {key: value for key, value in given.items() if value is not None}
        else:
            values[f.name] = getattr(namespace, f.name)
    return cls(**values)


def described(cls: type) -> list[tuple[str, str]]:
    """Each declared option's flag (or its name, if positional) and help, as `-h` explains it."""
    return [(f.name if declared.positional else flag, each.text % {"default": _default(f)})
            for f, declared in declared_fields(cls) for flag, each, _ in _values(f, declared, {})]


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else None if f.default is MISSING else f.default


# Checks, each raising InputError that says what a value must be


def at_least(low: float) -> Callable[[float], None]:
    def check(value: float) -> None:
        if value < low:
            raise InputError(f"must be at least {low:g}")

    return check


def above(low: float) -> Callable[[float], None]:
    def check(value: float) -> None:
        if not value > low:
            raise InputError(f"must be above {low:g}")

    return check


def gpu_numbers(text: str) -> list[int]:
    """`0,2,3`: distinct GPU numbers from 0."""
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        raise InputError("GPU numbers separated by commas (0,2,3)") from None
    if min(numbers) < 0 or len(set(numbers)) < len(numbers):
        raise InputError("distinct GPU numbers from 0")
    return numbers



def duration(text: str) -> float:
    """`90s`, `20m`, `2h`, `1h30m` or plain seconds (`600`): seconds."""
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or not parts:
        raise InputError("a duration such as 90s, 20m, 2h or 1h30m")
    hours, minutes, seconds = (float(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def said_duration(seconds: float) -> str:
    """`1h 05m`, `20m`, `45s`: a duration as the user would write it."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
