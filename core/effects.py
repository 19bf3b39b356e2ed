"""What an efficiency experiment expects of a variation: one effect, one direction.

Shared by the plan (`search_spaces/experiments.py`, which reads them from YAML) and the analysis
(`analysis/effects.py`, which checks them against the measured change).

    >>> Expectation("gpu_memory", "reduces").phrase
    'reduces gpu memory'
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import EFFECTS

DIRECTIONS = ("reduces", "increases", "affects")


@dataclass(frozen=True)
class Expectation:
    """One effect the plan expects of a variation ("reduces GPU memory"); `situational`: the
    plan's asterisk, the effect depends on the setting."""

    effect: str  # core.schema.EFFECTS
    direction: str  # DIRECTIONS
    situational: bool = False

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"effect={self.effect!r}: use one of {', '.join(EFFECTS)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r}: use one of {', '.join(DIRECTIONS)}")

    @property
    def phrase(self) -> str:
        star = " (situational)" if self.situational else ""
        return f"{self.direction} {self.effect.replace('_', ' ')}{star}"
