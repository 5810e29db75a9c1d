"""Where a phrase's words sit in one field of a paper: close together in any order (covered),
or word for word. A field is given as term -> its positions in the field's term list.

Proximity matters because stems collide ("optimal" and "optimization" are both "optim") and
because words of a phrase far apart in an abstract rarely mean the phrase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

WINDOW_SLACK = 1  # at 3, "Bayesian inference techniques that use neural networks" matched

Field = Mapping[str, Sequence[int]]


def covers(phrase: Sequence[str], field: Field, weights: Mapping[str, float],
           need: float) -> bool:
    """Whether a window of ``len(phrase) + WINDOW_SLACK`` positions holds words of ``phrase``
    whose ``weights`` (each word once) add up to ``need``."""
    if len(weights) == 1:
        return phrase[0] in field
    events = sorted((pos, term) for term in weights for pos in field.get(term, ()))
    window = len(phrase) + WINDOW_SLACK
    counts: dict[str, int] = {}
    total, left = 0.0, 0
    for pos, term in events:
        counts[term] = counts.get(term, 0) + 1
        total += weights[term] if counts[term] == 1 else 0.0
        while pos - events[left][0] >= window:
            gone = events[left][1]
            counts[gone] -= 1
            total -= weights[gone] if counts[gone] == 0 else 0.0
            left += 1
        if total >= need - 1e-9:
            return True
    return False


def has_phrase(phrase: Sequence[str], field: Field) -> bool:
    """Whether ``phrase`` occurs word for word."""
    later = [set(field.get(term, ())) for term in phrase[1:]]
    return any(all(start + k + 1 in seen for k, seen in enumerate(later))
               for start in field.get(phrase[0], ()))
