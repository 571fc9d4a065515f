"""Checks: one module per check, each emitting scored symbols."""
