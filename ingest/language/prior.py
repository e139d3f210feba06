"""A feed's own evidence about its language, as a prior for short texts. Pure: the service
passes the evidence in (`FeedLanguagePrior`), this module does no I/O.

Short texts (headlines) give the detectors little to go on, and both can be confidently wrong
("Enhancing quantum sensing" -> la 0.999). A feed whose recent long entries are all English is
strong evidence that its next headline is English too. So a short text whose answer disagrees
with a confident prior keeps that answer only when the two languages compared alone (the
high-accuracy models, `LanguageDetector.pair`) overcome the prior's odds: the posterior of the
other language must reach STRONG_EVIDENCE. With 20 English long entries (prior 0.95) a German
headline needs a pairwise probability of about 0.994: "Neue Regeln für Mieter ab Januar" keeps
`de`, "Angela Merkel" (names only) becomes `en`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ingest.language.detect import UNDETERMINED, LanguageDetector, is_short, sample
from ingest.models import LanguageResult

DECLARED_VOTES = 2  # the feed's declared language counts as this many long entries
PRIOR_CONFIDENT = 0.75  # below this belief the prior is not used (a declared language alone: 0.67)
PRIOR_MAX = 0.95  # a feed may still carry the odd foreign headline
STRONG_EVIDENCE = 0.9  # posterior a disagreeing short text's language needs to stand
RECENT_ENTRIES = 50  # long entries of the feed the service tallies
LONG_TEXT_CHARS = 480  # an entry this long (title + text) is not short (`is_short`)


@dataclass(frozen=True)
class FeedLanguagePrior:
    """What one feed says about its language: the declared code and its recent long entries' codes."""

    declared: str | None = None
    recent: tuple[tuple[str, int], ...] = ()  # (language, long entries) of the feed's recent articles

    @classmethod
    def of(cls, declared: str | None, recent: Mapping[str, int] | Iterable[str]) -> FeedLanguagePrior:
        tally = Counter(recent) if not isinstance(recent, Mapping) else Counter(dict(recent))
        tally.pop(UNDETERMINED, None)
        return cls(declared, tuple(sorted(tally.items())))

    def belief(self) -> tuple[str | None, float]:
        """The prior's language and how sure it is: long entries (and the declaration) voting, with
        one pseudo-vote for "something else"; capped at PRIOR_MAX."""
        votes = Counter(dict(self.recent))
        if self.declared:
            votes[self.declared] += DECLARED_VOTES
        if not votes:
            return None, 0.0
        language, count = max(votes.items(), key=lambda kv: (kv[1], kv[0] == self.declared))
        return language, min(PRIOR_MAX, count / (sum(votes.values()) + 1))


def with_prior(
    detector: LanguageDetector, text: str, found: LanguageResult, prior: FeedLanguagePrior
) -> LanguageResult:
    """`found` for `text`, revised by the feed's prior when the text is short and the prior confident."""
    language, belief = prior.belief()
    if language is None or belief < PRIOR_CONFIDENT or found.code == language:
        return found
    if not is_short(sample(" ".join(text.split()))):
        return found
    guess = found if found.code != UNDETERMINED else detector.guess(text)
    if guess.code == UNDETERMINED:  # too few letters to say anything
        return found
    if guess.code == language:
        return LanguageResult(language, guess.confidence)
    pairwise = detector.pair(text, guess.code, language)
    if pairwise is None:  # no evidence beyond the overconfident ranking: the prior stands
        return LanguageResult(language, round(belief, 4))
    other = pairwise * (1 - belief)
    posterior = other / (other + (1 - pairwise) * belief)
    if posterior >= STRONG_EVIDENCE:
        return guess if found.code != UNDETERMINED else LanguageResult(guess.code, round(posterior, 4))
    return LanguageResult(language, round(1 - posterior, 4))
