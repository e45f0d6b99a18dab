"""The guard: back to the last healthy weights when a transformer collapses.

    guard = Guard(model, optimizer, scheduler, announce)
    monitor = HealthMonitor(model, stop=True)      # raises TransformerCollapsed
    for epoch in ...:
        stats = train_epoch_guarded(guard, lambda: train_epoch(..., monitor=monitor))

A transformer that drifts off the canvas (its grid T_theta(G), equation (1), samples
only the zero padding) gives its classifier blank images and gets no gradient back to
its localisation net (equations (6)-(7) are zero there): it does not come back on its
own (:mod:`minstn.experiments.health`). The guard restores the model, the optimiser
and the schedule as they were after the last healthy epoch, multiplies the learning
rate of the localisation nets by ``GUARD_FACTOR``, and the epoch is trained again.
``minstn train --guard`` and ``minstn reproduce --guard`` both use it.
"""

from __future__ import annotations

import copy

from .health import TransformerCollapsed
from .loop import LOCALISATION

__all__ = ["Guard", "train_epoch_guarded", "GUARD_FACTOR", "GUARD_RETRIES"]

GUARD_FACTOR = 0.1   # the localisation lr is multiplied by this at each collapse
GUARD_RETRIES = 3    # ... at most this many times, then training stops ("collapsed")


class Guard:
    """The last healthy state of the model, optimiser and schedule, and what to do when
    a transformer collapses: restore that state, lower the localisation lr."""

    def __init__(self, model, optimizer, scheduler, announce):
        self.model, self.optimizer, self.scheduler, self.announce = model, optimizer, scheduler, announce
        self.retries = 0
        self.save()

    def save(self) -> None:
        """Remember the current (healthy) state; its lrs already hold the earlier reductions."""
        self.state = (self.model.state_dict(), copy.deepcopy(self.optimizer.state_dict()),
                      None if self.scheduler is None else copy.deepcopy(self.scheduler.state_dict()))
        self.factor = 1.0     # the reduction to apply on top of the saved state

    def restore(self, err: TransformerCollapsed) -> None:
        """Back to the last healthy state with the localisation lr times GUARD_FACTOR, or
        re-raise when GUARD_RETRIES restores did not help."""
        if self.retries >= GUARD_RETRIES:
            raise err
        self.retries += 1
        self.factor *= GUARD_FACTOR
        weights, opt_state, sched_state = self.state
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(opt_state)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(sched_state)
        for index, group in enumerate(self.optimizer.param_groups):
            if group.get("name") == LOCALISATION:
                if self.scheduler is None:
                    group["lr"] *= self.factor
                else:
                    self.scheduler.scale_group(index, self.factor)
                lr = group["lr"]
        # every restore so far is in the saved state or in this one's factor: GUARD_FACTOR ** retries in all
        self.announce(f"{err}; guard: restored the last healthy weights, localisation lr now {lr:.3g} "
                      f"({GUARD_FACTOR ** self.retries:g} x its schedule), "
                      f"repeating the epoch ({self.retries} of {GUARD_RETRIES})")


def train_epoch_guarded(guard: Guard | None, run_epoch):
    """``run_epoch()`` (one epoch of training; returns its stats). With a guard, each
    collapse sends the model back to the last healthy state and the epoch runs again
    (``guard.restore`` re-raises when it gives up); an epoch that ends healthy becomes
    the new healthy state. Without a guard a collapse goes up to the caller."""
    while True:
        try:
            stats = run_epoch()
            break
        except TransformerCollapsed as err:
            if guard is None:
                raise
            guard.restore(err)
    if guard is not None:
        guard.save()
    return stats
