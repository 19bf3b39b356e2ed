"""MO-ASHA's rung decision: the top 1/eta of the rung by Pareto front and crowding."""

from study.mo_asha import continues


def test_the_first_trial_at_a_rung_continues():
    assert continues({"a": (-0.1, 5.0)}, "a", 3)


def test_a_dominated_trial_stops_and_a_cheaper_equal_one_goes_on():
    # objectives: (-ROUGE, energy). b scores the same as a for more energy: a dominates b
    rung = {"a": (-0.3, 4.0), "b": (-0.3, 6.0)}
    assert continues(rung, "a", 3) and not continues(rung, "b", 3)


def test_a_trade_off_keeps_the_spread_not_one_score():
    # three mutually non-dominated trials and a dominated one, eta 2: two of four go on. The
    # ends of the front (best ROUGE, least energy) have infinite crowding distance and win;
    # single-objective ASHA would keep the two best ROUGE scores (c and b) instead.
    rung = {"a": (-0.10, 1.0), "b": (-0.30, 5.0), "c": (-0.31, 9.0), "d": (-0.05, 9.5)}
    kept = {t for t in rung if continues(rung, t, 2)}
    assert kept == {"a", "c"}


def test_a_diverged_trial_never_goes_on_ahead_of_a_finite_one():
    rung = {"a": (float("nan"), 1.0), "b": (-0.0, 9.0)}
    assert continues(rung, "b", 2) and not continues(rung, "a", 2)
