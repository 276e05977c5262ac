from pathlib import Path

import pytest

from xenmem.cli.xe.invocation import Invocation, UsageError, parse_invocation, read_defaults_file


def test_switches_params_and_flags() -> None:
    invocation = parse_invocation(
        ["-s", "pool1", "-p", "8080", "-u", "root", "-pw", "secret", "vm-shutdown"]
        + ["vm=web", "--force", "params=uuid,name-label"]
    )
    assert invocation == Invocation(
        command="vm-shutdown",
        params={"vm": "web", "force": "true", "params": "uuid,name-label"},
        connection={"server": "pool1", "port": "8080", "username": "root", "password": "secret"},
    )
    assert invocation.flag("force")
    assert not invocation.flag("minimal")


def test_values_may_contain_equals_signs() -> None:
    assert parse_invocation(["vm-param-set", "other-config:a=b=c"]).params == {
        "other-config:a": "b=c"
    }


def test_connection_keys_as_parameters() -> None:
    invocation = parse_invocation(["host-list", "server=h", "port=1", "passwordfile=/p", "--nossl"])
    assert invocation.connection == {
        "server": "h",
        "port": "1",
        "passwordfile": "/p",
        "nossl": "true",
    }
    assert invocation.params == {}


def test_precedence_defaults_then_extra_args_then_command_line() -> None:
    invocation = parse_invocation(
        ["-p", "3", "vm-list"],
        extra_args="server=from-env, port=2",
        defaults={"server": "from-file", "port": "1", "username": "root", "ignored": "x"},
    )
    assert invocation.connection == {"server": "from-env", "port": "3", "username": "root"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "No command given"),
        (["vm-list", "stray"], "Unexpected argument 'stray'"),
        (["vm-list", "-s"], "Option -s needs a value"),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_invocation(argv)


def test_defaults_file(tmp_path: Path) -> None:
    path = tmp_path / ".xe"
    path.write_text("# pool\nserver=pool1\n\nport = 8080\nbroken line\n")
    assert read_defaults_file(path) == {"server": "pool1", "port": "8080"}
    assert read_defaults_file(tmp_path / "missing") == {}


def test_help_takes_a_command_name() -> None:
    assert parse_invocation(["help", "vm-list"]).params == {"command": "vm-list"}
