from xenmem.cli.xe.output import (
    ShownField,
    format_error,
    format_map,
    format_minimal,
    format_record,
    format_set,
    select_fields,
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


def test_select_fields_keeps_the_order_asked() -> None:
    assert [f.name for f in select_fields(FIELDS, "other-config,uuid,nonsense")] == [
        "other-config",
        "uuid",
    ]
    assert select_fields(FIELDS, "all") == FIELDS
    assert select_fields(FIELDS, None) == FIELDS


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
