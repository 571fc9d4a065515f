"""Command implementations for the ``mailmoat`` CLI."""
