"""PBT's ranking and donor rule (pure, no Ray): finished trials count, diverged ones never donate"""

import math
import random

from study.pbt import Standing, choose_donor, quantiles, rank, rank_key, trial_order


def s(trial_id, score, val_loss=1.0, live=True, train_loss=1.0, order=None):
    return Standing(
        trial_id,
        trial_order(trial_id) if order is None else order,
        score,
        val_loss,
        train_loss,
        live,
    )


def test_diverged_and_missing_rank_at_the_bottom():
    standings = [
        s("t_00000", math.nan),
        s("t_00001", 0.1),
        s("t_00002", None),
        s("t_00003", 0.3, val_loss=math.inf),
        s("t_00004", 0.2, train_loss=math.nan),
        s("t_00005", 0.05),
    ]
    assert [x.trial_id for x in rank(standings, "max")][:2] == ["t_00001", "t_00005"]
    assert {x.trial_id for x in rank(standings, "max")[2:]} == {
        "t_00000",
        "t_00002",
        "t_00003",
        "t_00004",
    }
    assert not s("t_00003", 0.3, val_loss=math.inf).valid


def test_ties_break_on_validation_loss_then_the_earlier_trial():
    # three trials at ROUGE-L 0 (none has learned to summarize yet): the lower loss is ahead
    tied = [
        s("t_00000", 0.0, val_loss=6.8),
        s("t_00001", 0.0, val_loss=4.5),
        s("t_00002", 0.0, val_loss=4.5),
    ]
    assert [x.trial_id for x in rank(tied, "max")] == ["t_00001", "t_00002", "t_00000"]
    # mode=min (val_loss as the metric): lower scores first
    assert [x.trial_id for x in rank([s("a_00000", 3.0), s("a_00001", 2.0)], "min")] == [
        "a_00001",
        "a_00000",
    ]


def test_finished_trials_are_ranked_and_can_donate():
    # the two good trials finished first; the stragglers diverged and learned nothing
    population = [
        s("t_00000", 0.33, live=False),
        s("t_00001", 0.32, live=False),
        s("t_00002", 0.0, val_loss=9.0),
        s("t_00003", 0.0, val_loss=7.0),
    ]
    lower, upper = quantiles(population, 0.5, "max")
    assert {x.trial_id for x in upper} == {"t_00000", "t_00001"}
    assert {x.trial_id for x in lower} == {"t_00002", "t_00003"}
    donor = choose_donor(population[2], upper, "max", random.Random(0))
    assert donor is not None and not donor.live


def test_never_a_worse_or_diverged_donor():
    rng = random.Random(0)
    me = s("t_00001", 0.2)
    assert choose_donor(me, [s("t_00000", 0.1)], "max", rng) is None  # below the cloning trial
    assert choose_donor(me, [s("t_00002", math.nan)], "max", rng) is None  # diverged
    assert choose_donor(me, [me], "max", rng) is None  # itself
    # an equal score with a worse validation loss does not rank above
    assert (
        choose_donor(s("t_00001", 0.2, val_loss=1.0), [s("t_00000", 0.2, val_loss=1.5)], "max", rng)
        is None
    )
    better = s("t_00003", 0.3)
    assert choose_donor(me, [s("t_00000", 0.1), better], "max", rng) == better


def test_quantile_sizes_follow_ray():
    population = [s(f"t_{i:05d}", i / 10) for i in range(8)]
    lower, upper = quantiles(population, 0.25, "max")
    assert len(lower) == len(upper) == 2
    assert quantiles(population[:1], 0.25, "max") == ([], [])
    lower, upper = quantiles(population[:3], 0.5, "max")  # at most half each
    assert len(lower) == len(upper) == 1
    assert rank_key(population[0], "max") < rank_key(population[1], "max")
