"""Residue detectors for benchmarks/realworld.py, written apart from the cleaning rules.

The cleaning rules (ingest/rules/default.toml) decide what the service removes; these patterns
only count what a reader would call residue in stored text, so a rule cannot grade itself.
Each detector looks at one whole paragraph of at most MAX_CHARS characters.
"""

from __future__ import annotations

import re

MAX_CHARS = 300

_DETECTORS: dict[str, str] = {
    "share": r"^\W*(?:share|tweet|email|teilen|partager|compartir|condividi|partilhar|delen|поделиться|分享|شارك)"
    r"(?: (?:this|it|the)(?: \w+)?)?(?:\s*(?:on|via|with|auf|sur|en|su|no|op|:)\s*.{0,40})?$",
    "social-row": r"^(?:(?:facebook|twitter|x|whatsapp|linkedin|pinterest|reddit|telegram|email|e-mail|mail|print|"
    r"flipboard|messenger|copy link|vk|weibo|wechat)\W*){2,}$",
    "follow": r"^(?:follow|folgen sie|suivez|síguenos|seguici|siga|volg|подпишитесь|关注).{0,80}"
    r"(?:facebook|twitter|instagram|telegram|youtube|tiktok|linkedin|whatsapp|google news|x)\b",
    "related": r"^(?:related|related (?:articles|stories|content|news|topics)|more (?:stories|news|from|on)\b.{0,40}|"
    r"recommended|trending|trending (?:on|now|in)\b.{0,40}|most (?:read|popular|viewed)|top stories|"
    r"you (?:may|might) (?:also )?(?:like|enjoy|be interested)|weitere artikel|mehr zum thema|meistgelesen|"
    r"à lire aussi|lire aussi|les plus lus|noticias relacionadas|te puede interesar|lo más leído|leggi anche|"
    r"leia também|lees ook|читайте также|相关(?:新闻|阅读|文章)|推荐阅读|اقرأ أيضا)\W*$",
    "comments": r"^(?:\d+\s+)?(?:comments?|reader comments|leave a (?:comment|reply)|post a comment|reply|responder|"
    r"comentar|comentarios|commentaires|kommentare|kommentieren|antworten|répondre|commenti|comentários|"
    r"комментарии|ответить|评论|回复|التعليقات)\W*(?:\(\d+\))?\W*$",
    "relative-time": r"^(?:hace \d+ (?:segundos?|minutos?|horas?|días?)|\d+ (?:seconds?|minutes?|mins?|hours?|hrs?|days?) "
    r"ago|il y a \d+ (?:minutes?|heures?|jours?)|vor \d+ (?:minuten|stunden|tagen)|\d+ (?:минут|час|дн)\S* назад|"
    r"\d+\s*(?:分钟|小时|天)前|há \d+ (?:minutos?|horas?|dias?)|\d+ (?:minuti|ore|giorni) fa)$",
    "newsletter": r"^(?:\W*(?:sign up|subscribe|get our|newsletter|abonnieren|abonnez|inscrivez|suscríbete|iscriviti|"
    r"assine|inscreva|подпишитесь|订阅)).{0,120}(?:inbox|email|newsletter|updates|briefing|alerts?)\b|"
    r"^(?:get|receive) .{0,40}alerts?\W*$",
    "paywall": r"(?:subscribers? only|for subscribers|already a subscriber|subscribe to (?:continue|read)|"
    r"to continue reading|you have reached your|free articles? (?:left|remaining)|log ?in to (?:read|continue)|"
    r"nur für abonnenten|réservé aux abonnés|exclusivo para suscriptores|riservato agli abbonati|"
    r"exclusivo para assinantes|только для подписчиков|付费阅读|订阅后阅读)",
    "promo": r"^(?:advertisement|advertising|sponsored(?: content| stories)?|promoted(?: stories| content)?|paid (?:content|post)|"
    r"partner content|from our partners|anzeige|werbung|publicité|publicidad|pubblicità|publicidade|реклама|广告|"
    r"recommended by|ads by \w+)\W*$",
    "credit": r"^\(?(?:getty(?: images)?|afp|reuters|ap|ap photo|epa|shutterstock|istock|imago|dpa)(?:\s*/\s*\S.{0,40})?\)?$|"
    r"^(?:photo|image|picture|foto|bild|фото|图片)s?\s*(?:by|:|credit|courtesy)\s*.{0,60}$",
    "ad-marker": r"^\[?\s*ad[_ ]?\d\s*\]?$|^source link$",
    "hashtags": r"^(?:#[\w-]+[\s,]*){2,}$",
    "cookie": r"(?:we use cookies|this (?:site|website) uses cookies|cookie (?:policy|settings)|accept (?:all )?cookies)",
    "navigation": r"^(?:home|menu|skip to (?:main )?content|log ?in|sign ?in|register|search|close|back to top|"
    r"next article|previous article|startseite|accueil|inicio|главная|首页)\W*$",
    "copyright": r"^(?:©|copyright\b|\(c\) ?\d{4}).{0,200}$|all rights reserved\W*$",
}
DETECTORS = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in _DETECTORS.items()}


def residue_kind(paragraph: str) -> str | None:
    """The first detector that calls this paragraph residue, or None."""
    if len(paragraph) > MAX_CHARS:
        return None
    text = paragraph.strip()
    for name, pattern in DETECTORS.items():
        if pattern.search(text):
            return name
    return None
