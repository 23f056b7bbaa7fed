"""Learning-rate schedules (section 5 of the paper).

The paper: "We used an equal learning rate for all layers, which we adjusted
manually throughout training. The heuristic which we followed was to divide
the learning rate by 10 when the validation error rate stopped improving
with the current learning rate. The learning rate was initialized at 0.01
and reduced three times prior to termination."

:class:`ReduceOnPlateau` automates that heuristic; :class:`StepSchedule`
divides at fixed epochs instead (predictable run time, handy for short runs).
Not in the paper: :class:`TimeSchedule` divides at fractions of a time
budget, :class:`CosineSchedule` lowers the rate smoothly to 0 over the run.

All are called once at the end of every epoch::

    reduced = schedule.step(epoch, val_error, optimizer)   # may set optimizer.lr

the last two also after every SGD step (``schedule.after_step(step,
elapsed_seconds, optimizer)``); all have ``state_dict()`` /
``load_state_dict()`` for exact resume.
"""
from __future__ import annotations

import math


class ReduceOnPlateau:
    """Divide the learning rate by ``1/factor`` when validation error stops improving.

    An epoch *improves* when its validation error is below the best so far by
    more than ``threshold`` (absolute, in error-rate units: 0.001 = 0.1%).
    After ``patience`` epochs in a row without improvement the learning rate
    is multiplied by ``factor`` (0.1: "divided by 10") and the count starts
    again. At most ``max_reductions`` reductions happen (3 in the paper);
    after that the learning rate stays fixed.
    """

    def __init__(self, factor=0.1, patience=2, max_reductions=3, threshold=1e-3):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor}")
        if int(patience) < 1:
            raise ValueError(f"ReduceOnPlateau: patience must be >= 1 epoch, got {patience}")
        if int(max_reductions) < 0:
            raise ValueError(f"ReduceOnPlateau: max_reductions must be >= 0, got {max_reductions}")
        if threshold < 0:
            raise ValueError(f"ReduceOnPlateau: threshold must be >= 0, got {threshold}")
        self.factor, self.patience = float(factor), int(patience)
        self.max_reductions, self.threshold = int(max_reductions), float(threshold)
        self.best = math.inf             # lowest validation error seen
        self.bad_epochs = 0              # epochs since the last improvement (or reduction)
        self.reductions = 0              # reductions made so far

    def step(self, epoch, val_error, optimizer):
        """Record the validation error of a finished epoch; returns True if lr was reduced."""
        val_error = float(val_error)
        if val_error < self.best - self.threshold:
            self.best, self.bad_epochs = val_error, 0
            return False
        self.best = min(self.best, val_error)
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.reductions < self.max_reductions:
            optimizer.lr = optimizer.lr * self.factor
            self.reductions += 1
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self):
        return {"kind": "plateau", "factor": self.factor, "patience": self.patience,
                "max_reductions": self.max_reductions, "threshold": self.threshold,
                "best": self.best, "bad_epochs": self.bad_epochs, "reductions": self.reductions}

    def load_state_dict(self, state):
        if state.get("kind", "plateau") != "plateau":
            raise ValueError(f"ReduceOnPlateau.load_state_dict: the state is of a {state['kind']!r} schedule")
        self.__init__(state["factor"], state["patience"], state["max_reductions"], state["threshold"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.reductions = int(state["reductions"])
        return self

    def __repr__(self):
        return (f"ReduceOnPlateau(factor={self.factor}, patience={self.patience}, "
                f"max_reductions={self.max_reductions}, threshold={self.threshold})")


class StepSchedule:
    """Multiply the learning rate by ``factor`` at fixed epochs.

    ``step_epochs`` is either an int ``s`` (reduce after epochs s, 2s, 3s, ...)
    or a list of epoch counts (``[10, 15]``: reduce after the 10th and the
    15th epoch). ``max_reductions`` caps the count, as in the paper.
    """

    def __init__(self, step_epochs=10, factor=0.1, max_reductions=3):
        if isinstance(step_epochs, (list, tuple)):
            milestones = sorted(int(e) for e in step_epochs)
            if not milestones or milestones[0] < 1:
                raise ValueError(f"StepSchedule: step_epochs must be positive epoch counts, got {step_epochs}")
        else:
            if int(step_epochs) < 1:
                raise ValueError(f"StepSchedule: step_epochs must be >= 1, got {step_epochs}")
            milestones = int(step_epochs)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"StepSchedule: factor must be in (0, 1), got {factor}")
        self.step_epochs, self.factor = milestones, float(factor)
        self.max_reductions = int(max_reductions)
        self.reductions = 0

    def _is_milestone(self, epochs_done):
        if isinstance(self.step_epochs, list):
            return epochs_done in self.step_epochs
        return epochs_done % self.step_epochs == 0

    def step(self, epoch, val_error, optimizer):
        """Called after epoch ``epoch`` (0-based) finished; returns True if lr was reduced."""
        if self._is_milestone(int(epoch) + 1) and self.reductions < self.max_reductions:
            optimizer.lr = optimizer.lr * self.factor
            self.reductions += 1
            return True
        return False

    def state_dict(self):
        return {"kind": "step", "step_epochs": self.step_epochs, "factor": self.factor,
                "max_reductions": self.max_reductions, "reductions": self.reductions}

    def load_state_dict(self, state):
        if state.get("kind", "step") != "step":
            raise ValueError(f"StepSchedule.load_state_dict: the state is of a {state['kind']!r} schedule")
        self.__init__(state["step_epochs"], state["factor"], state["max_reductions"])
        self.reductions = int(state["reductions"])
        return self

    def __repr__(self):
        return f"StepSchedule(step_epochs={self.step_epochs}, factor={self.factor}, max_reductions={self.max_reductions})"


class TimeSchedule:
    """Multiply the learning rate by ``factor`` when given fractions of a time budget have passed.

    For runs limited by wall-clock time (``--time-limit``) rather than by
    epochs: with ``fractions=(0.6, 0.85)`` the rate drops after 60% and 85%
    of ``limit_seconds``. Checked after every SGD step with
    :meth:`after_step`. (Not in the paper; it makes "the best net in 30
    minutes" a well-defined run whatever the machine's load. Time-based
    decisions are not reproducible bit for bit.)
    """

    def __init__(self, limit_seconds, fractions=(0.6, 0.85), factor=0.1):
        if not limit_seconds or limit_seconds <= 0:
            raise ValueError("TimeSchedule: needs a time limit > 0 (--time-limit MINUTES)")
        fractions = sorted(float(f) for f in fractions)
        if any(not 0 < f < 1 for f in fractions):
            raise ValueError(f"TimeSchedule: fractions must be in (0, 1), got {fractions}")
        self.limit_seconds, self.fractions, self.factor = float(limit_seconds), fractions, float(factor)
        self.reductions = 0

    def after_step(self, step, elapsed_seconds, optimizer):
        """After an SGD step: reduce lr if the next fraction of the budget has passed; True if it did."""
        if self.reductions < len(self.fractions) and \
                elapsed_seconds >= self.fractions[self.reductions] * self.limit_seconds:
            optimizer.lr = optimizer.lr * self.factor
            self.reductions += 1
            return True
        return False

    def step(self, epoch, val_error, optimizer):
        return False          # decisions are made per step, by time

    def state_dict(self):
        return {"kind": "time", "limit_seconds": self.limit_seconds, "fractions": self.fractions,
                "factor": self.factor, "reductions": self.reductions}

    def load_state_dict(self, state):
        self.__init__(state["limit_seconds"], state["fractions"], state["factor"])
        self.reductions = int(state["reductions"])
        return self

    def __repr__(self):
        return f"TimeSchedule(limit_seconds={self.limit_seconds}, fractions={self.fractions}, factor={self.factor})"


class CosineSchedule:
    r"""Lower the learning rate along half a cosine, from ``base_lr`` to 0 at the end of the run.

    .. math::
        \text{lr}(t) = \text{base\_lr} \cdot \tfrac{1}{2}\,(1 + \cos \pi t), \qquad
        t = \text{the fraction of the run done, in } [0, 1]

    ``t`` is the fraction of the time budget (``limit_seconds``, from
    ``--time-limit``) when there is one, else of ``total_steps`` (epochs x
    batches per epoch): after k steps the next one uses lr(k / total_steps).
    Set after every SGD step by :meth:`after_step`.
    Not in the paper (Loshchilov and Hutter 2017, without restarts): on a
    fixed budget it spends no time at a rate too high to settle and none at
    one too low to move, where the paper's divisions by 10 jump between them.
    Nothing in it changes as it runs (the rate is a function of the run's
    progress), so a resumed run simply continues the curve.
    """

    def __init__(self, base_lr, limit_seconds=None, total_steps=None):
        if not base_lr > 0:
            raise ValueError(f"CosineSchedule: base_lr must be > 0, got {base_lr}")
        if limit_seconds is None and total_steps is None:
            raise ValueError("CosineSchedule: needs the run's length: limit_seconds (--time-limit) or total_steps")
        if limit_seconds is not None and not limit_seconds > 0:
            raise ValueError(f"CosineSchedule: limit_seconds must be > 0, got {limit_seconds}")
        if total_steps is not None and int(total_steps) < 1:
            raise ValueError(f"CosineSchedule: total_steps must be >= 1, got {total_steps}")
        self.base_lr = float(base_lr)
        self.limit_seconds = None if limit_seconds is None else float(limit_seconds)
        self.total_steps = None if total_steps is None else int(total_steps)

    def fraction(self, step, elapsed_seconds):
        """t: the fraction of the run done after ``step`` SGD steps and ``elapsed_seconds`` of it."""
        done = (elapsed_seconds / self.limit_seconds if self.limit_seconds is not None
                else step / self.total_steps)
        return min(max(done, 0.0), 1.0)

    def lr_at(self, t):
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * t))

    def after_step(self, step, elapsed_seconds, optimizer):
        """Set the rate for the next step; returns False (a smooth change is not a reduction to log).

        At t = 1 the run is over and the rate stays as it was (SGD refuses a rate of 0); just
        below 1 it is kept at least a millionth of ``base_lr`` for the same reason.
        """
        t = self.fraction(step, elapsed_seconds)
        if t < 1.0:
            optimizer.lr = max(self.lr_at(t), 1e-6 * self.base_lr)
        return False

    def step(self, epoch, val_error, optimizer):
        return False          # the rate is set after every step

    def state_dict(self):
        return {"kind": "cosine", "base_lr": self.base_lr, "limit_seconds": self.limit_seconds,
                "total_steps": self.total_steps}

    def load_state_dict(self, state):
        if state.get("kind") != "cosine":
            raise ValueError(f"CosineSchedule.load_state_dict: the state is of a {state.get('kind')!r} schedule")
        return self           # nothing to restore: the curve is a function of progress and the settings

    def __repr__(self):
        length = (f"limit_seconds={self.limit_seconds}" if self.limit_seconds is not None
                  else f"total_steps={self.total_steps}")
        return f"CosineSchedule(base_lr={self.base_lr}, {length})"


SCHEDULES = ("plateau", "step", "time", "cosine", "none")


def make_schedule(kind, patience=2, max_reductions=3, step_epochs=10, factor=0.1, threshold=1e-3,
                  time_limit_seconds=None, base_lr=None, total_steps=None):
    """Build a schedule by name: 'plateau' (the paper), 'step', 'time' (needs a time limit),
    'cosine' (needs base_lr and the time limit or total_steps), 'none'."""
    if kind == "time":
        return TimeSchedule(time_limit_seconds, factor=factor)
    if kind == "cosine":
        return CosineSchedule(base_lr, limit_seconds=time_limit_seconds, total_steps=total_steps)
    if kind == "plateau":
        return ReduceOnPlateau(factor, patience, max_reductions, threshold)
    if kind == "step":
        return StepSchedule(step_epochs, factor, max_reductions)
    if kind in ("none", None):
        return StepSchedule(step_epochs=10**9, factor=factor, max_reductions=0)
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
