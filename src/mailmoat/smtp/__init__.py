"""The SMTP front: listener, sessions, the protocol dialogue."""
