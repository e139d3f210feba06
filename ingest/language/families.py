"""Language families the detectors confuse: data only, kept apart from the detection logic."""

from __future__ import annotations

# Languages py3langid mixes up with a neighbour lingua tells apart better.
CONFUSABLE = frozenset(
    {
        "bs",
        "hr",
        "sr",
        "sl",
        "mk",
        "bg",
        "da",
        "nb",
        "nn",
        "no",
        "sv",
        "id",
        "ms",
        "tl",
        "cs",
        "sk",
        "ca",
        "gl",
        "pt",
        "es",
        "it",
        "la",
        "be",
        "uk",
        "ru",
        "kk",
        "mn",
        "af",
        "nl",
        "ga",
        "cy",
        "zh",
        "ja",
        "ko",
        "fa",
        "ur",
        "ar",
        "st",
        "tn",
        "ts",
        "xh",
        "zu",
        "sn",
        "so",
        "sw",
        "yo",
        "lg",
        "mi",
    }
)
# Close relatives the two detectors may split between without the text being mixed.
FAMILIES: tuple[frozenset[str], ...] = tuple(
    frozenset(g)
    for g in (
        ("hr", "bs", "sr", "sl", "mk", "bg"),
        ("nb", "no", "nn", "da", "sv"),
        ("id", "ms", "tl"),
        ("cs", "sk"),
        ("es", "ca", "gl", "pt", "it", "la"),
        ("ru", "uk", "be", "bg", "mk", "sr", "kk", "mn"),
        ("nl", "af"),
        ("zh", "ja"),
        ("ar", "fa", "ur"),
        ("hi", "mr", "ne"),
        ("st", "tn", "ts", "xh", "zu", "sn", "sw", "lg", "nso"),
    )
)
