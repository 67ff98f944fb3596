"""Fault injection: each module provokes one kind of fault and asserts what still holds."""
