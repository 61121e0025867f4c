"""One package per source system kind: a dlt source and the mapping of its fields to the contract."""
