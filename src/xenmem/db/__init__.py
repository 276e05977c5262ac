"""Persistence shared by the toolstack and the XenAPI layer: the object store and users.

It sits below both (neither imports the other through it): the toolstack reads and writes
objects through `Store`, the XenAPI layer derives each class's `Schema` from its datamodel.
"""

from xenmem.db.store import (
    ANYTHING,
    NULL_REF,
    Change,
    Interest,
    Record,
    Relation,
    Schema,
    Store,
    Sum,
    Transaction,
    new_ref,
)

__all__ = [
    "ANYTHING",
    "NULL_REF",
    "Change",
    "Interest",
    "Record",
    "Relation",
    "Schema",
    "Store",
    "Sum",
    "Transaction",
    "new_ref",
]
