"""The classifier model a process scores with, once one is shared.

Contract: a ``ModelHolder`` lives as long as the process (reloads keep it).
``publish(model)`` makes ``model`` the one every classifier check scores
with from now on (one reference swap: a scan sees the old model or the new
one, never a mix) and remembers its ``version``; until a model is published
``classifier`` is None and checks use the model their config names.
Publishers: the cluster model sync (a newer model in the store) and
autolearn (the model it just saved). Nothing registers with the holder, so
rebuilding the checks (SIGHUP) leaves nothing behind.
"""

from __future__ import annotations

from mailmoat.classify.classifier import Classifier
from mailmoat.classify.model import Model


class ModelHolder:
    def __init__(self) -> None:
        self.classifier: Classifier | None = None
        self.version: int | None = None

    def publish(self, model: Model) -> None:
        self.classifier = Classifier(model)
        self.version = model.version
