"""Residue detectors for benchmarks/realworld.py, written apart from the cleaning rules.

The cleaning rules (ingest/rules/default.toml) decide what the service removes; these patterns
only count what a reader would call residue in stored text, so a rule cannot grade itself.
Each detector looks at one whole paragraph of at most MAX_CHARS characters.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

MAX_CHARS = 300

# each detector: alternatives, joined with "|"; a paragraph is residue when one of them matches
_DETECTORS: dict[str, tuple[str, ...]] = {
    "share": (
        r"^\W*(?:share|tweet|email|teilen|partager|compartir|condividi|partilhar|delen|поделиться|分享|شارك)"
        r"(?: (?:this|it|the)(?: \w+)?)?(?:\s*(?:on|via|with|auf|sur|en|su|no|op|:)\s*.{0,40})?$",
    ),
    "social-row": (
        r"^(?:(?:facebook|twitter|x|whatsapp|linkedin|pinterest|reddit|telegram|email|e-mail|mail|print|"
        r"flipboard|messenger|copy link|vk|weibo|wechat)\W*){2,}$",
    ),
    "follow": (
        r"^(?:follow|folgen sie|suivez|síguenos|seguici|siga|volg|подпишитесь|关注).{0,80}"
        r"(?:facebook|twitter|instagram|telegram|youtube|tiktok|linkedin|whatsapp|google news|x)\b",
    ),
    "related": (
        r"^(?:related|related (?:articles|stories|content|news|topics)|recommended|top stories)\W*$",
        r"^(?:more (?:stories|news|from|on)\b.{0,40}|trending|trending (?:on|now|in)\b.{0,40})\W*$",
        r"^(?:most (?:read|popular|viewed)|you (?:may|might) (?:also )?(?:like|enjoy|be interested))\W*$",
        r"^(?:weitere artikel|mehr zum thema|meistgelesen|à lire aussi|lire aussi|les plus lus)\W*$",
        r"^(?:noticias relacionadas|te puede interesar|lo más leído|leggi anche|leia também|lees ook)\W*$",
        r"^(?:читайте также|相关(?:新闻|阅读|文章)|推荐阅读|اقرأ أيضا)\W*$",
    ),
    "comments": (
        r"^(?:\d+\s+)?(?:comments?|reader comments|leave a (?:comment|reply)|post a comment|reply)\W*$",
        r"^(?:\d+\s+)?comments?\W*\(\d+\)\W*$",
        r"^(?:\d+\s+)?(?:responder|comentar|comentarios|commentaires|kommentare|kommentieren|antworten)\W*$",
        r"^(?:\d+\s+)?(?:répondre|commenti|comentários|комментарии|ответить|评论|回复|التعليقات)\W*$",
    ),
    "relative-time": (
        r"^\d+ (?:seconds?|minutes?|mins?|hours?|hrs?|days?) ago$",
        r"^hace \d+ (?:segundos?|minutos?|horas?|días?)$",
        r"^(?:il y a \d+ (?:minutes?|heures?|jours?)|vor \d+ (?:minuten|stunden|tagen))$",
        r"^(?:\d+ (?:минут|час|дн)\S* назад|\d+\s*(?:分钟|小时|天)前|há \d+ (?:minutos?|horas?|dias?))$",
        r"^\d+ (?:minuti|ore|giorni) fa$",
    ),
    "newsletter": (
        r"^(?:\W*(?:sign up|subscribe|get our|newsletter|abonnieren|abonnez|inscrivez|suscríbete|iscriviti|"
        r"assine|inscreva|подпишитесь|订阅)).{0,120}(?:inbox|email|newsletter|updates|briefing|alerts?)\b",
        r"^(?:get|receive) .{0,40}alerts?\W*$",
    ),
    "paywall": (
        r"subscribers? only|for subscribers|already a subscriber|subscribe to (?:continue|read)",
        r"to continue reading|you have reached your|free articles? (?:left|remaining)",
        r"log ?in to (?:read|continue)",
        r"nur für abonnenten|réservé aux abonnés|exclusivo para suscriptores|riservato agli abbonati",
        r"exclusivo para assinantes|только для подписчиков|付费阅读|订阅后阅读",
    ),
    "promo": (
        r"^(?:advertisement|advertising|sponsored(?: content| stories)?|promoted(?: stories| content)?)\W*$",
        r"^(?:paid (?:content|post)|partner content|from our partners|recommended by|ads by \w+)\W*$",
        r"^(?:anzeige|werbung|publicité|publicidad|pubblicità|publicidade|реклама|广告)\W*$",
    ),
    "credit": (
        r"^\(?(?:getty(?: images)?|afp|reuters|ap|ap photo|epa|shutterstock|istock|imago|dpa)\)?$",
        r"^\(?(?:getty images|afp|reuters|ap|epa)\s*/\s*\S.{0,40}\)?$",
        r"^(?:photo|image|picture|foto|bild|фото|图片)s?\s*(?:by|:|credit|courtesy)\s*.{0,60}$",
    ),
    "ad-marker": (r"^\[?\s*ad[_ ]?\d\s*\]?$", r"^source link$"),
    "hashtags": (r"^(?:#[\w-]+[\s,]*){2,}$",),
    "cookie": (
        r"we use cookies|this (?:site|website) uses cookies",
        r"cookie (?:policy|settings)|accept (?:all )?cookies",
    ),
    "navigation": (
        r"^(?:home|menu|skip to (?:main )?content|log ?in|sign ?in|register|search|close|back to top)\W*$",
        r"^(?:next article|previous article|startseite|accueil|inicio|главная|首页)\W*$",
    ),
    "copyright": (r"^(?:©|copyright\b|\(c\) ?\d{4}).{0,200}$", r"all rights reserved\W*$"),
}
DETECTORS = {
    name: re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE) for name, parts in _DETECTORS.items()
}


def residue_kind(paragraph: str) -> str | None:
    """The first detector that calls this paragraph residue, or None."""
    if len(paragraph) > MAX_CHARS:
        return None
    text = paragraph.strip()
    for name, pattern in DETECTORS.items():
        if pattern.search(text):
            return name
    return None


@dataclass
class ResidueTally:
    """Paragraphs seen, and those the detectors call residue (by kind, with examples)."""

    paragraphs: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, paragraphs: list[str]) -> None:
        for para in paragraphs:
            self.paragraphs += 1
            kind = residue_kind(para)
            if kind:
                self.kinds[kind] += 1
                self.examples.append(f"[{kind}] {para[:100]}")

    @property
    def found(self) -> int:
        return sum(self.kinds.values())
