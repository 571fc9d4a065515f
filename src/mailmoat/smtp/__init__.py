"""The SMTP front: server, upstream relay, Maildir delivery."""
