"""The feedback loop: one home for the classifier model, and learning into it.

Public API:

* ``home_for(config, store)``: the model's single source of truth
  (``FileHome`` for ``classifier.model_path``, else ``StoreHome``), with
  kept versions and the ledger of learned messages (``mailmoat.feedback.home``).
* ``apply_feedback(home, [(raw, "spam"|"ham"|"forget"), ...])``: learn,
  move or forget messages and save once (``mailmoat.feedback.learning``).
* ``learn_with_config(config, store, items)``: the same from a config, in a
  worker thread with its own store connection, as the dashboard and the
  HTTP API call it (``mailmoat.feedback.service``).
* ``model_loaders(config)``: what the gateway polls to pick up a model
  someone saved (``mailmoat.cluster`` uses it).
"""

from __future__ import annotations

from mailmoat.feedback.home import FileHome, ModelHome, StoreHome, file_version, home_for
from mailmoat.feedback.learning import LABELS, FeedbackError, FeedbackResult, apply_feedback, digest

__all__ = [
    "LABELS",
    "FeedbackError",
    "FeedbackResult",
    "FileHome",
    "ModelHome",
    "StoreHome",
    "apply_feedback",
    "digest",
    "file_version",
    "home_for",
]
