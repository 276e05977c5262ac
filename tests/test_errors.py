import pytest

from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION,
    VMS_FAILED_TO_COOPERATE,
    ErrorDef,
    XenAPIError,
    all_error_defs,
)


def test_params_are_decimal_strings_on_the_wire() -> None:
    error = HOST_NOT_ENOUGH_FREE_MEMORY(2186280960, "5")
    assert error.description == ["HOST_NOT_ENOUGH_FREE_MEMORY", "2186280960", "5"]
    assert error == XenAPIError("HOST_NOT_ENOUGH_FREE_MEMORY", ("2186280960", "5"))


def test_declared_arity_is_enforced() -> None:
    with pytest.raises(TypeError):
        HOST_NOT_ENOUGH_FREE_MEMORY(1)
    with pytest.raises(TypeError):
        MEMORY_CONSTRAINT_VIOLATION("constraint")


def test_variadic_error_takes_one_param_per_vm() -> None:
    assert VMS_FAILED_TO_COOPERATE("OpaqueRef:a", "OpaqueRef:b").params == (
        "OpaqueRef:a",
        "OpaqueRef:b",
    )


def test_a_code_cannot_be_declared_twice_differently() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        ErrorDef("HOST_NOT_ENOUGH_FREE_MEMORY", ("only_one",))


def test_registry_holds_every_declared_error() -> None:
    registry = all_error_defs()
    assert registry["MEMORY_CONSTRAINT_VIOLATION_MAXPIN"].params == ("reason",)
    assert all(code == definition.code for code, definition in registry.items())
    assert HOST_NOT_ENOUGH_FREE_MEMORY.matches(HOST_NOT_ENOUGH_FREE_MEMORY(1, 2))
    assert not HOST_NOT_ENOUGH_FREE_MEMORY.matches(ValueError())
