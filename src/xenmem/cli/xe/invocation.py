"""How xe reads its command line, `XE_EXTRA_ARGS` and `~/.xe` into one invocation.

xe's grammar: global switches (`-s HOST`, `-p PORT`, `-u USER`, `-pw PASSWORD`,
`-pwf FILE`, `--nossl`) anywhere, one command name, then `key=value` parameters; `--flag`
means `flag=true`. Connection settings may also be given as `server=`, `port=`,
`username=`, `password=`, `passwordfile=` parameters. Precedence, lowest first: `~/.xe`,
then `XE_EXTRA_ARGS` (comma-separated `key=value`), then the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CONNECTION_KEYS",
    "Invocation",
    "UsageError",
    "is_true",
    "parse_invocation",
    "read_defaults_file",
]

_SWITCH_KEYS = {
    "-s": "server",
    "-p": "port",
    "-u": "username",
    "-pw": "password",
    "-pwf": "passwordfile",
}
CONNECTION_KEYS = frozenset({"server", "port", "username", "password", "passwordfile", "nossl"})


class UsageError(Exception):
    """A command line xe would refuse; the message is what xe prints."""


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """One xe call: the command, its parameters, and where and as whom to connect."""

    command: str
    params: Mapping[str, str] = field(default_factory=dict)
    connection: Mapping[str, str] = field(default_factory=dict)

    def flag(self, name: str) -> bool:
        return is_true(self.params.get(name, "false"))


def is_true(text: str) -> bool:
    """xe's reading of a boolean parameter (`--flag` arrives as `true`)."""
    return text.lower() in ("true", "yes", "on", "1")


def read_defaults_file(path: Path) -> dict[str, str]:
    """`~/.xe`: `key=value` lines; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    defaults: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            defaults[key.strip()] = value.strip()
    return defaults


def _split_extra_args(text: str) -> list[str]:
    return [part for part in (piece.strip() for piece in text.split(",")) if part]


def _tokens_to_pairs(tokens: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Split tokens into bare words (the command) and key=value pairs."""
    words: list[str] = []
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token in _SWITCH_KEYS:
            if position + 1 >= len(tokens):
                raise UsageError(f"Option {token} needs a value")
            pairs.append((_SWITCH_KEYS[token], tokens[position + 1]))
            position += 2
            continue
        if token.startswith("--") and len(token) > 2:
            pairs.append((token[2:], "true"))
        elif "=" in token:
            key, value = token.split("=", 1)
            pairs.append((key, value))
        else:
            words.append(token)
        position += 1
    return words, pairs


def parse_invocation(
    argv: Sequence[str], *, extra_args: str = "", defaults: Mapping[str, str] | None = None
) -> Invocation:
    """The invocation `argv` asks for, with `XE_EXTRA_ARGS` and `~/.xe` values beneath it."""
    words, pairs = _tokens_to_pairs(argv)
    if not words:
        raise UsageError("No command given. For usage run: 'xe help'")
    if words[0] == "help" and len(words) == 2:
        # `xe help COMMAND` is the one command line with a second bare word.
        pairs.append(("command", words.pop()))
    if len(words) > 1:
        raise UsageError(f"Unexpected argument '{words[1]}': parameters take the form key=value")
    connection = {k: v for k, v in (defaults or {}).items() if k in CONNECTION_KEYS}
    params: dict[str, str] = {}
    _, extra_pairs = _tokens_to_pairs(_split_extra_args(extra_args))
    for key, value in [*extra_pairs, *pairs]:
        if key in CONNECTION_KEYS:
            connection[key] = value
        else:
            params[key] = value
    return Invocation(command=words[0], params=params, connection=connection)
