"""Delivery: where an accepted message goes, and how it gets there.

The upstream SMTP client and its connection pool (before-queue relay), the
Maildir writer (embedded delivery), the quarantine and its release. Used by
the SMTP front and the dashboard alike; imports nothing of either.
"""
