from xenmem.cli.xe.output import (
    ShownField,
    format_error,
    format_failure,
    format_map,
    format_minimal,
    format_record,
    format_set,
)

FIELDS = [
    ShownField(name="uuid", qualifier="RO", value="3f0e"),
    ShownField(name="name-label", qualifier="RW", value="web"),
    ShownField(name="other-config", qualifier="MRW", value="a: 1"),
]


def test_record_aligns_labels_on_the_colon() -> None:
    assert format_record(FIELDS) == (
        "uuid ( RO)        : 3f0e\n  name-label ( RW): web\nother-config (MRW): a: 1\n\n\n"
    )
    assert format_record([]) == ""


def test_minimal_sets_maps_errors() -> None:
    assert format_minimal(["a", "b"]) == "a,b\n"
    assert format_minimal([]) == "\n"
    assert format_set(["x", "y"]) == "x; y"
    assert format_map({"k": "v", "k2": "v2"}) == "k: v; k2: v2"
    assert format_error("MEMORY_CONSTRAINT_VIOLATION_ORDER", []) == (
        "Error code: MEMORY_CONSTRAINT_VIOLATION_ORDER\nError parameters: \n"
    )
    assert format_error("HOST_NOT_ENOUGH_FREE_MEMORY", ["1", "2"]).endswith(
        "Error parameters: 1, 2\n"
    )


def test_failure_with_described_params() -> None:
    assert format_failure(
        ["VM_BAD_POWER_STATE", "OpaqueRef:1", "halted", "running"], str.upper
    ) == ("Error code: VM_BAD_POWER_STATE\nError parameters: OPAQUEREF:1, HALTED, RUNNING\n")
    assert format_failure([]) == "Error code: INTERNAL_ERROR\nError parameters: \n"
