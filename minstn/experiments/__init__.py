"""The application floor: what the ``minstn`` command runs, built on the library.

* ``loop.py``       the one training loop (``train_epoch``), evaluation, the optimiser
* ``health.py``     the transformer's health monitor (theta shift, grid off the canvas, collapse)
* ``guard.py``      back to the last healthy weights when a transformer collapses (``--guard``)
* ``runs.py``       a run folder: what ``minstn train`` keeps in it and the rules for writing there
* ``train.py``      ``minstn train`` / ``minstn evaluate``: ``TrainConfig``, ``train``, ``evaluate``
* ``reproduce/``    ``minstn reproduce``: the paper's tables, cell by cell
* ``cli.py``        the command line; ``console.py`` its messages and argument types

The library below (``minstn.autograd`` ... ``minstn.models``, ``minstn.data``,
``minstn.viz``) never imports from here.
"""

from .loop import TrainingDiverged, error_rate, make_optimizer, predict, train_epoch
from .train import TrainConfig, evaluate, load_model, train

__all__ = ["TrainingDiverged", "error_rate", "make_optimizer", "predict", "train_epoch", "TrainConfig",
           "evaluate", "load_model", "train"]
