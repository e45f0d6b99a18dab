"""How long each cell trains (:class:`Budget`, :data:`BUDGETS`), and what identifies a cell's run.

``cell_settings`` is everything that decides a cell's result (budget, model, column,
seed, data); a stored cell is reused only when its settings are exactly these
(:mod:`.cells`). ``cell_cost`` orders cells longest first for ``--jobs N``.
:class:`Overrides` is what ``--epochs``, ``--max-updates``, ``--loc-lr-scale`` and ``--guard``
change in a named budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..guard import GUARD_FACTOR
from .paper import Cell

__all__ = ["Budget", "BUDGETS", "Overrides", "cell_settings", "cell_cost"]


@dataclass(frozen=True)
class Budget:
    """How long each cell trains. ``iterations`` (when set) overrides the epochs.

    ``epochs`` is the epoch count of the fully-connected family (FCN, ST-FCN, 2xST-FCN)
    and ``conv_epochs`` (when set) that of the convolutional family (CNN, ST-CNN, ST-CNN
    Multi): the paper's ordering compares models inside a family only (ST-FCN vs FCN,
    ST-CNN vs CNN), and a conv epoch costs 7-55 times an FC epoch on a CPU (measured in
    docs/results.md, "Run time"), so the cheap family can be trained longer without
    changing any comparison the table makes. ``loc_lr_scale`` applies to every ST model
    alike; the named budgets use 1 for Table 1 (docs/results.md, "Budgets", says why not 3).

    ``addition_changes`` (when set) holds the fields MNIST addition changes in this budget:
    :meth:`for_task` applies them. Addition needs many more updates than Table 1's columns
    (its learning curves barely leave chance in 25 epochs), and its two-transformer model
    keeps both transformers on the canvas only with the localisers at lr / 10
    (docs/results.md, "MNIST addition, medium budget").
    """

    name: str
    train_size: int
    test_size: int
    epochs: int
    batch_size: int
    optimizer: str            # adam | sgd
    lr: float
    loc_lr_scale: float       # localisation nets (and their regression layers) train at lr * this
    momentum: float = 0.0
    iterations: int | None = None
    lr_step: int | None = None    # schedule "step": divide lr by 10 every lr_step iterations
    eval_every_epoch: bool = False
    description: str = ""
    conv_epochs: int | None = None   # epochs of CNN / ST-CNN cells (None: ``epochs``)
    schedule: str = "constant"    # constant | step | cosine | onecycle (experiments.loop.make_scheduler)
    warmup: float = 0.3           # onecycle: the share of a cell's updates spent warming up
    clip: float | None = None     # clip the gradients' global norm to this
    weight_decay: float = 0.0
    guard: bool = False           # on a collapse: back to the last healthy epoch (experiments.guard)
    addition_changes: dict | None = dataclasses.field(default=None, hash=False)  # unhashable: left out of the hash

    def for_task(self, task: str) -> Budget:
        """This budget as ``task`` (``"table1"`` or ``"addition"``) trains its cells."""
        if task != "addition" or not self.addition_changes:
            return self
        return dataclasses.replace(self, addition_changes=None, **self.addition_changes)

    def epochs_for(self, cell: "Cell") -> int:
        return self.conv_epochs if cell.group == "conv" and self.conv_epochs is not None else self.epochs


# small and medium: a seeded split of the 10,000 real MNIST test digits, batches of 64
SPLIT_TRAIN, SPLIT_TEST, BATCH = 8000, 2000, 64
ADDITION_MEDIUM_EPOCHS = 90   # what fits 60 minutes with --jobs 2 on 2 cores (docs/results.md)

BUDGETS = {
    "tiny": Budget("tiny", train_size=256, test_size=128, epochs=1, batch_size=64, optimizer="adam", lr=1e-3,
                   loc_lr_scale=1.0, description="256 train / 128 test digits, 1 epoch: a CI smoke test"),
    "small": Budget("small", train_size=SPLIT_TRAIN, test_size=SPLIT_TEST, epochs=10, conv_epochs=3,
                    batch_size=BATCH, optimizer="adam", lr=1e-3, loc_lr_scale=1.0,
                    description=f"{SPLIT_TRAIN:,} train / {SPLIT_TEST:,} test real digits, Adam lr 1e-3 (localisation "
                                f"nets too), batch {BATCH}, fresh distortions each epoch; FC family "
                                "(FCN, ST-FCN) 10 epochs, conv family (CNN, ST-CNN) 3 epochs"),
    "medium": Budget("medium", train_size=SPLIT_TRAIN, test_size=SPLIT_TEST, epochs=25, batch_size=BATCH,
                     optimizer="adam", lr=2e-3, loc_lr_scale=1.0, schedule="onecycle", warmup=0.3,
                     eval_every_epoch=True,
                     description=f"{SPLIT_TRAIN:,} train / {SPLIT_TEST:,} test real digits, Adam with a one-cycle "
                                 "schedule (peak lr 2e-3 after 30% of the updates, then down to ~0; "
                                 f"localisation nets too), batch {BATCH}, fresh distortions each epoch, "
                                 f"25 epochs ({25 * (SPLIT_TRAIN // BATCH):,} updates) for every model, the "
                                 "test error after every epoch (the learning curves)",
                     addition_changes={"epochs": ADDITION_MEDIUM_EPOCHS, "loc_lr_scale": 0.1,
                               "description": f"{SPLIT_TRAIN:,} train pairs per epoch from {SPLIT_TRAIN:,} real "
                                              f"digits, {SPLIT_TEST:,} test pairs, Adam with a one-cycle "
                                              "schedule (peak lr 2e-3 after 30% of the updates, then down to "
                                              "~0; localisation nets at lr / 10), "
                                              f"batch {BATCH}, {ADDITION_MEDIUM_EPOCHS} epochs "
                                              f"({ADDITION_MEDIUM_EPOCHS * (SPLIT_TRAIN // BATCH):,} updates) "
                                              "for every model, the test error after every epoch"}),
    "full": Budget("full", train_size=60000, test_size=10000, epochs=10**9, batch_size=256, optimizer="sgd",
                   lr=0.01, loc_lr_scale=1.0, iterations=150_000, schedule="step", lr_step=50_000,
                   description="the paper's schedule: SGD lr 0.01 / 10 every 50k iterations, batch 256, "
                               "150k iterations, full MNIST"),
}


def cell_settings(budget: Budget, cell: Cell, distortion: str, seed: int, task: str, source: str) -> dict:
    """Everything that decides a cell's result, as stored in its ``metrics.json`` (recipe
    fields at their defaults are left out, so cells stored before they existed stay valid)."""
    s = dataclasses.asdict(budget)
    for field in dataclasses.fields(Budget):
        if field.name in _RECIPE and s[field.name] == field.default:
            s.pop(field.name)
    s.pop("description")
    s.pop("addition_changes")   # already applied to an addition cell's budget (Budget.for_task)
    # per-cell settings: the epochs this cell trains for, and the localiser lr and the guard
    # only where there is a localiser, so changing one family's schedule retrains only that
    # family (the guard's key is already gone when it is off, its default)
    s.pop("conv_epochs")
    s["epochs"] = budget.epochs_for(cell)
    if cell.transform is None:
        s.pop("loc_lr_scale")
        s.pop("guard", None)
    if cell.base in ("st-fcn", "st-cnn"):
        # minstn.models draws these models' classifier first, with the plain FCN / CNN's
        # weights ("paired"); cells stored before that change lack the key and retrain
        s["init"] = "paired"
    s.update(task=task, model=cell.base, transform=None if cell.transform is None else cell.transform_name,
             distortion=distortion, seed=seed, data=source,
             seeds={"data_split": seed, "init": seed, "train_distortion": 2 * seed, "test_distortion": 2 * seed + 1,
                    "shuffle": f"[{seed}, epoch, 0x5EED]"})
    return s


_RECIPE = ("schedule", "warmup", "clip", "weight_decay", "guard")
_SIDE = {"rts": 42, "tc": 60, "addition": 42}  # input side per distortion (others: 28)


def cell_cost(cell: Cell, budget: Budget, distortion: str) -> float:
    """A rough relative training time of a cell, to start the longest cells first.

    Per epoch, in units of an FCN epoch on 28x28 inputs (measured on the ``small``
    budget, seed 0): a CNN epoch costs about 16, an ST model its baseline's cost times
    1.15 (ST-CNN), 1.5 (ST-CNN Multi), 2 (ST-FCN) or 3 (2xST-FCN); with the input area
    ``a = (side / 28) ** 2`` it grows as ``a ** 0.75`` for the FC family (FCN on RTS's
    42x42: 1.8x its 28x28 time) and ``a ** 1.75`` for the conv family (CNN: 4.3x).
    Times the cell's epochs. Only the order matters."""
    area = (_SIDE.get(distortion, 28) / 28) ** 2
    if cell.group == "conv":
        st = {"st-cnn": 1.15, "st-cnn-multi": 1.5}.get(cell.base, 1.0)
        per_epoch = 16.0 * st * area ** 1.75
    else:
        st = {"st-fcn": 2.0, "2xst-fcn": 3.0}.get(cell.base, 1.0)
        per_epoch = st * area ** 0.75
    return budget.epochs_for(cell) * per_epoch


@dataclass(frozen=True)
class Overrides:
    """What the command line changes in a named budget: ``epochs`` (every model, both
    families, trains that many epochs, its schedule stretched over them), ``max_updates``
    (every cell stops after at most that many updates: a slice of a long budget),
    ``loc_lr_scale`` (the localisation nets learn at lr times this) and ``guard`` (a
    transformer that collapses is sent back to its last healthy epoch with its
    localisation lr lowered: :mod:`minstn.experiments.guard`). Each goes into the
    cells' settings, so cells of different overrides never mix; ``--jobs`` children get
    them back as the same flags (:meth:`argv`)."""

    # each field's command-line flag and how a figure title names it (:meth:`argv`, :meth:`label`)
    epochs: int | None = dataclasses.field(default=None, metadata={"flag": "--epochs", "label": "{} epochs"})
    max_updates: int | None = dataclasses.field(default=None, metadata={"flag": "--max-updates",
                                                                        "label": "{:,} updates"})
    loc_lr_scale: float | None = dataclasses.field(default=None, metadata={"flag": "--loc-lr-scale",
                                                                           "label": "localisers at lr x {:g}"})
    guard: bool | None = dataclasses.field(default=None, metadata={"flag": "--guard", "label": "guarded"})

    def apply(self, budget: Budget) -> Budget:
        """``budget`` with these changes (its description says what changed)."""
        if self.epochs is not None and budget.iterations is not None:
            raise ValueError(f"--epochs does not apply to the {budget.name!r} budget: it counts "
                             f"{budget.iterations:,} updates, not epochs (use --max-updates for a slice)")
        if self.epochs is not None:
            budget = dataclasses.replace(budget, epochs=self.epochs, conv_epochs=None,
                                         description=f"{budget.description}; here {self.epochs} epochs "
                                                     f"for every model (--epochs {self.epochs})")
        if self.max_updates is not None:
            budget = dataclasses.replace(budget, iterations=min(budget.iterations or self.max_updates,
                                                                self.max_updates))
        if self.loc_lr_scale is not None:
            budget = dataclasses.replace(budget, loc_lr_scale=self.loc_lr_scale,
                                         description=f"{budget.description}; localisation nets at lr x "
                                                     f"{self.loc_lr_scale:g} (--loc-lr-scale)")
        if self.guard:
            budget = dataclasses.replace(budget, guard=True,
                                         description=f"{budget.description}; a collapsed transformer goes "
                                                     f"back to its last healthy epoch, localisers' lr x "
                                                     f"{GUARD_FACTOR:g} (--guard)")
        return budget

    def _given(self):
        """(field, value) of every override that is set, in the order of the fields."""
        given = [(f, getattr(self, f.name)) for f in dataclasses.fields(self)]
        return [(f, v) for f, v in given if v is not None and v is not False]   # False: a flag not given

    def label(self, budget: Budget) -> str:
        """``"medium budget"``, or with what the overrides changed: ``"medium budget, 45 epochs"``."""
        return ", ".join([f"{budget.name} budget"] + [f.metadata["label"].format(v) for f, v in self._given()])

    def argv(self) -> list:
        """The command-line flags that give these overrides (for ``--jobs`` children and the
        command recorded in the table)."""
        return [text for f, v in self._given() for text in ((f.metadata["flag"],) if v is True
                                                             else (f.metadata["flag"], str(v)))]
