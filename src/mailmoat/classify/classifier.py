"""The classifier facade: parsed message in, spam probability out; learning.

Contract: ``Classifier.load(path)`` reads a model file, or with no path the
default model shipped in the package (an empty model, logged, if the package
was built without one). ``score``/``margin`` never raise for a
``ParsedMessage``; ``learn`` updates the model in place and is safe to call
while other threads score. ``save`` writes atomically.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from mailmoat.classify.features import FeatureConfig, IndexArray, extract
from mailmoat.classify.model import Model
from mailmoat.classify.persist import load_file, loads, save_file
from mailmoat.message import ParsedMessage

log = logging.getLogger("mailmoat.classify")


def default_model_bytes() -> bytes | None:
    """The model shipped as ``mailmoat/data/model.bin``, None if absent."""
    try:
        return resources.files("mailmoat").joinpath("data/model.bin").read_bytes()
    except (FileNotFoundError, OSError):
        return None


class Classifier:
    """A model plus the feature extraction it was trained with."""

    def __init__(self, model: Model) -> None:
        self.model = model

    @classmethod
    def empty(cls, features: FeatureConfig | None = None) -> Classifier:
        return cls(Model(features))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Classifier:
        """The model at ``path``; None or "" means the shipped default."""
        if path:
            return cls(load_file(path))
        data = default_model_bytes()
        if data is None:
            log.warning("classifier: no default model shipped, starting empty")
            return cls.empty()
        return cls(loads(data))

    def features(self, message: ParsedMessage) -> IndexArray:
        return extract(message, self.model.features)

    def margin(self, message: ParsedMessage) -> float:
        return self.model.margin(self.features(message))

    def score(self, message: ParsedMessage) -> float:
        """Calibrated spam probability of ``message``."""
        return self.model.probability(self.features(message))

    def learn(self, message: ParsedMessage, is_spam: bool, *, force: bool = False) -> bool:
        """Learn one message; True if the model changed (see ``Model.learn``)."""
        return self.model.learn(self.features(message), is_spam, force=force)

    def save(self, path: str | Path) -> None:
        save_file(self.model, path)
