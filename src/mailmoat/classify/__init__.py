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
  message learned into the shared model (the dashboard's learn action).
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
from mailmoat.message import parse_message
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
    """Learn ``message`` (always, feedback is never skipped) into the model
    shared in ``store`` (seeded from the configured model when the store has
    none) and save it; with no store, into ``classifier.model_path``.
    Retries a few times when another node saved concurrently."""
    parsed = parse_message(message)
    count_learn("spam" if is_spam else "ham")
    for _ in range(5):
        model = await load_from_store(store, key) if store is not None else None
        if model is None:
            model = Classifier.load(config.classifier.model_path).model
            model.version = 0
        model.learn(extract(parsed, model.features), is_spam, force=True)
        if store is None:
            if not config.classifier.model_path:
                raise ValueError("no store and no classifier.model_path to learn into")
            save_file(model, config.classifier.model_path)
            return f"saved to {config.classifier.model_path}"
        try:
            version = await save_to_store(model, store, key)
        except ModelConflictError:
            continue
        return f"model version {version}"
    raise ModelConflictError(f"{key}: too many concurrent saves")
