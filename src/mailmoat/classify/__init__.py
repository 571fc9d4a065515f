"""The statistical content classifier: hashed features, online logistic
regression, calibrated spam probability, persistence in files and the store.

Public API:

* ``Classifier`` (``load(path)``, ``score(msg)``, ``margin(msg)``,
  ``learn(msg, is_spam)``, ``save(path)``) over a ``Model`` and its
  ``FeatureConfig``; ``extract(msg, features)`` gives the feature indices.
* ``dumps``/``loads``/``save_file``/``load_file``: the binary model format.
* ``save_to_store(model, store, key)``, ``load_from_store(store, key)``,
  ``stored_version(store, key)``: the model shared through a ``Store``
  (``mailmoat.cluster`` polls these).
* ``learn_message(config=, store=, message=, is_spam=)``: one feedback
  message learned into the model's home (``mailmoat.feedback``; the
  dashboard's learn action).
"""

from __future__ import annotations

from typing import Any

from mailmoat.classify.classifier import Classifier
from mailmoat.classify.features import FeatureConfig, extract
from mailmoat.classify.model import Model
from mailmoat.classify.persist import (
    MODEL_KEY,
    ModelConflictError,
    ModelFormatError,
    dumps,
    load_file,
    load_from_store,
    loads,
    save_file,
    save_to_store,
    stored_version,
)
from mailmoat.metrics import count_learn

__all__ = [
    "MODEL_KEY",
    "Classifier",
    "FeatureConfig",
    "Model",
    "ModelConflictError",
    "ModelFormatError",
    "dumps",
    "extract",
    "learn_message",
    "load_file",
    "load_from_store",
    "loads",
    "save_file",
    "save_to_store",
    "stored_version",
]


async def learn_message(
    *, config: Any, store: Any, message: bytes, is_spam: bool, key: str = MODEL_KEY
) -> str:
    """Learn ``message`` (always, feedback is never skipped) into the model's
    one home (``mailmoat.feedback.home_for``: the ``classifier.model_path``
    file when set, else the store's model) and save it; learning the same
    message again with the same label changes nothing."""
    from mailmoat.feedback import apply_feedback, home_for

    count_learn("spam" if is_spam else "ham")
    home = home_for(config, store)
    try:
        result = await apply_feedback(
            home, [(message, "spam" if is_spam else "ham")], note="dashboard"
        )
    finally:
        await home.close()
    return result.summary()
