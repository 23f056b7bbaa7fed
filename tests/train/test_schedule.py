"""The paper's schedule: divide lr by 10 when validation error stops improving, at most 3 times."""
import numpy as np
import pytest

from tinyalex.train.schedule import ReduceOnPlateau, StepSchedule, make_schedule


class _Opt:
    def __init__(self, lr):
        self.lr = lr


def test_plateau_divides_by_ten_after_patience_epochs_without_improvement():
    opt, s = _Opt(0.01), ReduceOnPlateau(patience=2, threshold=0.0)
    assert [s.step(e, err, opt) for e, err in enumerate([0.5, 0.4, 0.41, 0.4])] == [False, False, False, True]
    assert opt.lr == pytest.approx(0.001)


def test_plateau_improvement_resets_the_count():
    opt, s = _Opt(0.01), ReduceOnPlateau(patience=2, threshold=0.0)
    for e, err in enumerate([0.5, 0.5, 0.4, 0.4]):
        s.step(e, err, opt)
    assert opt.lr == 0.01


def test_plateau_stops_after_max_reductions():
    opt, s = _Opt(1.0), ReduceOnPlateau(patience=1, max_reductions=3)
    for e in range(10):
        s.step(e, 0.5, opt)
    assert s.reductions == 3 and opt.lr == pytest.approx(1e-3)


def test_plateau_gain_below_threshold_is_not_an_improvement():
    opt, s = _Opt(1.0), ReduceOnPlateau(patience=1, threshold=0.01)
    s.step(0, 0.500, opt)
    assert s.step(1, 0.495, opt) is True


def test_plateau_state_round_trip_gives_the_same_decisions():
    opt_a, a = _Opt(1.0), ReduceOnPlateau(patience=2)
    for e, err in enumerate([0.5, 0.6]):
        a.step(e, err, opt_a)
    b = ReduceOnPlateau().load_state_dict(a.state_dict())
    opt_b = _Opt(opt_a.lr)
    assert a.step(2, 0.6, opt_a) == b.step(2, 0.6, opt_b) is True


def test_step_schedule_reduces_every_k_epochs():
    opt, s = _Opt(1.0), StepSchedule(step_epochs=2, factor=0.1, max_reductions=2)
    reduced = [s.step(e, 0.0, opt) for e in range(6)]
    assert reduced == [False, True, False, True, False, False]
    assert opt.lr == pytest.approx(0.01)


def test_step_schedule_with_milestones():
    opt, s = _Opt(1.0), StepSchedule(step_epochs=[1, 3])
    assert [s.step(e, 0.0, opt) for e in range(4)] == [True, False, True, False]


@pytest.mark.parametrize("bad", [dict(factor=1.0), dict(patience=0), dict(max_reductions=-1)])
def test_plateau_refuses_bad_settings_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ReduceOnPlateau(**bad)


def test_unknown_schedule_name_lists_the_choices():
    with pytest.raises(ValueError, match="plateau, step, time, cosine, none"):
        make_schedule("linear")


def test_time_schedule_divides_at_the_budget_fractions():
    from tinyalex.train.schedule import TimeSchedule

    opt, s = _Opt(1.0), TimeSchedule(100.0, fractions=(0.6, 0.85))
    assert [s.after_step(0, t, opt) for t in (10, 59, 60, 70, 86, 99)] == [False, False, True, False, True, False]
    assert opt.lr == pytest.approx(0.01)


def test_cosine_over_a_time_budget_starts_at_base_lr_and_halves_midway():
    opt, s = _Opt(0.05), make_schedule("cosine", base_lr=0.05, time_limit_seconds=100.0, total_steps=7)
    lrs = []
    for t in (0.0, 25.0, 50.0, 100.0, 130.0):
        assert s.after_step(3, t, opt) is False          # smooth: nothing to log as a reduction
        lrs.append(opt.lr)
    # at the end of the budget the run stops: the last rate stays (SGD refuses a rate of 0)
    np.testing.assert_allclose(lrs, [0.05, 0.05 * (1 + np.sqrt(0.5)) / 2, 0.025, 0.025, 0.025], atol=1e-15)


def test_cosine_without_a_time_budget_follows_the_step_count():
    opt, s = _Opt(1.0), make_schedule("cosine", base_lr=1.0, total_steps=10)
    lrs = []
    for k in (0, 5, 9):
        s.after_step(k, 1e9, opt)                           # the clock is ignored without a budget
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [1.0, 0.5, 0.5 * (1 + np.cos(0.9 * np.pi))], atol=1e-15)


def test_cosine_is_untouched_by_epoch_ends_and_resumes_from_its_state():
    opt, s = _Opt(1.0), make_schedule("cosine", base_lr=1.0, total_steps=4)
    assert s.step(0, 0.5, opt) is False and opt.lr == 1.0
    again = make_schedule("cosine", base_lr=1.0, total_steps=4).load_state_dict(s.state_dict())
    assert again.state_dict() == s.state_dict()
    with pytest.raises(ValueError, match="state is of a 'step' schedule"):
        again.load_state_dict(StepSchedule().state_dict())


def test_cosine_without_the_run_length_is_refused():
    with pytest.raises(ValueError, match="needs the run's length"):
        make_schedule("cosine", base_lr=0.1)
