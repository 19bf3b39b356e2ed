"""ROUGE scores, a regex sentence splitter and the lead-k extractive baseline.

Scores are `rouge-score` F-measures in [0, 1] with the Porter stemmer on, averaged over examples
(the per-example mean, as `rouge-score`'s own CLI and Hugging Face's `evaluate` report, without
bootstrap aggregation). ROUGE-Lsum splits summaries on `"\\n"`, so both predictions and
references are first put into one sentence per line with `summary_lines`; without that, a summary
on one line makes ROUGE-Lsum equal ROUGE-L (huggingface/transformers#6808). ROUGE-1/2/L ignore
line breaks (the tokenizer drops everything but [a-z0-9]), so the re-layout only changes Lsum.

The sentence splitter is a few regular expressions, not NLTK's Punkt (which needs a data download).
It is tuned for news and chat text: it keeps titles and common abbreviations ("Mr.", "Dr.",
"Jan."), initials and dotted acronyms ("J. K.", "U.S.", "a.m."), decimals ("3.5") and a
quotation's closing mark with the sentence it ends.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# Words that end with "." without ending a sentence (compared lower-case, without the dot).
# Day names are left out on purpose ("sat", "sun", "wed" are ordinary words).
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft gen sen rep gov lt col capt sgt cpl maj adm rev hon pres
    supt det insp cmdr vs e.g i.e cf al approx dept inc ltd co corp bros assn univ ave blvd
    """.split()
)
# Abbreviations that only hold before a number ("No. 5", "Jan. 12"); elsewhere they may end a
# sentence ("The answer was no.", "It was mar.").
NUMBER_ABBREVIATIONS = frozenset(
    "no nos pp p vol art ch sec jan feb mar apr jun jul aug sep sept oct nov dec".split()
)

# A possible sentence end: terminal punctuation, optional closing quotes/brackets, whitespace,
# then something that can start a sentence (an opening quote/bracket, a capital or a digit).
_BOUNDARY = re.compile(r"""([.!?]+)(['"’”)\]]*)(\s+)(?=['"‘“(\[]*[A-Z0-9À-ÖØ-Þ])""")
_DOTTED_ACRONYM = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # U.S, e.g, a.m (final dot cut)


def _is_abbreviation(word: str, next_char: str) -> bool:
    """Whether `word` (the text before a single ".") is an abbreviation, not a sentence end."""
    word = word.lstrip("'\"‘“([")
    low = word.lower()
    if not word:
        return False  # " ." as in tokenised CNN/DM highlights: a real end
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. K. Rowling"
    if _DOTTED_ACRONYM.match(word):
        return True
    if low in ABBREVIATIONS:
        return True
    return low in NUMBER_ABBREVIATIONS and next_char.isdigit()


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, stripped; every line break is a sentence break too."""
    sentences: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        start = 0
        for m in _BOUNDARY.finditer(line):
            punct = m.group(1)
            if punct == ".":
                cut = m.start()
                word = line[max(line.rfind(" ", 0, cut), line.rfind("\t", 0, cut)) + 1 : cut]
                next_char = line[m.end() : m.end() + 1]
                if _is_abbreviation(word, next_char):
                    continue
            sentence = line[start : m.end(2)].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def summary_lines(text: str) -> str:
    """`text` with one sentence per line: existing line breaks kept, each line sentence-split.

    Use on summaries before ROUGE-Lsum, e.g. on fairseq-layout CNN/DM highlights, which are joined
    by spaces on one line.
    """
    return "\n".join(split_sentences(text))


def lead_k(text: str, k: int) -> str:
    """The first `k` sentences of `text` (see `split_sentences`), joined by `"\\n"`."""
    if k < 1:
        raise ValueError(f"k={k}: must be >= 1")
    return "\n".join(split_sentences(text)[:k])


@functools.lru_cache(maxsize=1)
def _scorer() -> Any:
    """The one `RougeScorer` of this process (built on first use: it loads the stemmer)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_per_example(
    predictions: Sequence[str], references: Sequence[str], *, split_summaries: bool = True
) -> dict[str, list[float]]:
    """ROUGE F-measures (0..1) of every (prediction, reference) pair, under `ROUGE_TYPES`.

    With `split_summaries` (the default) both sides pass through `summary_lines` first, so
    ROUGE-Lsum sees one sentence per line; `False` scores the texts as given.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: pass one "
            "prediction per reference"
        )
    if not predictions:
        raise ValueError("no predictions to score: pass at least one (prediction, reference)")
    scorer = _scorer()
    out: dict[str, list[float]] = {key: [] for key in ROUGE_TYPES}
    for pred, ref in zip(predictions, references, strict=True):
        if split_summaries:
            pred, ref = summary_lines(pred), summary_lines(ref)
        scores = scorer.score(ref, pred)  # rouge-score's order: (target, prediction)
        for key in ROUGE_TYPES:
            out[key].append(scores[key].fmeasure)
    return out


def rouge_scores(
    predictions: Sequence[str], references: Sequence[str], *, split_summaries: bool = True
) -> dict[str, float]:
    """Mean ROUGE F-measures (0..1) over the pairs, under the keys of `ROUGE_TYPES`."""
    per_example = rouge_per_example(predictions, references, split_summaries=split_summaries)
    return {key: sum(values) / len(values) for key, values in per_example.items()}


def lead_k_baseline(
    pairs: Iterable[tuple[str, str]], k: int, *, split_summaries: bool = True
) -> dict[str, float]:
    """Mean ROUGE of the lead-`k` extract of each source against its target (see rouge_scores)."""
    pairs = list(pairs)
    return rouge_scores(
        [lead_k(source, k) for source, _ in pairs],
        [target for _, target in pairs],
        split_summaries=split_summaries,
    )
