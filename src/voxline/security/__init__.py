"""Security primitives: signed relay tokens."""
