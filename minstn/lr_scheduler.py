"""Learning-rate schedules with PyTorch's names and formulas (``torch.optim.lr_scheduler``).

A scheduler changes ``group["lr"]`` of every parameter group of an optimiser; call its
``step()`` once after every ``optimizer.step()`` (or once per epoch, if you count in
epochs). Each schedule is a closed-form function of the step count ``t``:

* ``StepLR``: ``lr = base_lr * gamma ** (t // step_size)`` -- the paper's "divided by 10
  every 50k iterations" (Jaderberg et al. 2015, appendix);
* ``CosineAnnealingLR``: ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2``;
* ``OneCycleLR``: a warm-up from ``max_lr / div_factor`` to ``max_lr`` over the first
  ``pct_start`` of the steps, then a cosine (or linear) decay to
  ``max_lr / div_factor / final_div_factor``; by default it also cycles the momentum
  (Adam's beta1) the other way, between 0.95 and 0.85, as PyTorch does.
"""

from __future__ import annotations

import math

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "OneCycleLR"]


class LRScheduler:
    """Base class: remembers each group's starting lr and applies ``lr_at(t)`` on ``step()``."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, t: int, index: int, group: dict) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self) -> None:
        for index, group in enumerate(self.optimizer.param_groups):
            group["lr"] = self.lr_at(self.last_epoch, index, group)

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def scale_group(self, index: int, factor: float) -> None:
        """From now on, group ``index`` follows the schedule times ``factor``."""
        self.base_lrs[index] *= factor
        self._apply()

    def get_last_lr(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply every group's lr by ``gamma`` every ``step_size`` calls of ``step()``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, t, index, group):
        return self.base_lrs[index] * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from each group's lr down to ``eta_min`` over ``T_max`` steps
    (PyTorch's closed form; its chained form differs only by rounding)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 - PyTorch's name
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, t, index, group):
        base = self.base_lrs[index]
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018) as ``torch.optim.lr_scheduler.OneCycleLR``.

    ``max_lr`` is one number, or one per parameter group (e.g. a localisation net at a
    tenth of the rate). Warm-up over ``pct_start * total_steps`` steps from
    ``max_lr / div_factor``, then annealing to ``max_lr / div_factor / final_div_factor``.
    With ``cycle_momentum`` the momentum (SGD) or beta1 (Adam) goes from ``max_momentum``
    down to ``base_momentum`` during the warm-up and back up after.
    """

    def __init__(self, optimizer, max_lr, total_steps: int, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4):
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"OneCycleLR: expected a positive integer total_steps, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: {len(max_lrs)} max_lr values for {len(groups)} parameter groups")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and not self.use_beta1 and "momentum" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimiser with momentum or betas")
        # (end step, start lr, end lr, start momentum, end momentum) of the two phases
        self.phases = [(float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                       (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        for group, top in zip(groups, max_lrs):
            group.update(initial_lr=top / div_factor, max_lr=top, min_lr=top / div_factor / final_div_factor,
                         max_momentum=max_momentum, base_momentum=base_momentum)
        super().__init__(optimizer)

    def scale_group(self, index, factor):
        group = self.optimizer.param_groups[index]
        for key in ("initial_lr", "max_lr", "min_lr"):
            group[key] *= factor
        self._apply()

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def lr_at(self, t, index, group):
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, but total_steps is {self.total_steps}")
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self.phases):
            if t <= end_step or i == len(self.phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                if self.cycle_momentum:
                    momentum = self._anneal(group[m0], group[m1], pct)
                    if self.use_beta1:
                        group["betas"] = (momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = momentum
                return self._anneal(group[lr0], group[lr1], pct)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover
