"""Clean stage: paragraphs, residue rules, titles, canonical URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.clean import canonical_url, clean_document, clean_title, load_rules, parse_rules, to_paragraphs
from ingest.errors import ConfigError
from ingest.settings import Settings

SEED = Path(__file__).resolve().parent.parent / "app" / "demo" / "feeds" / "seed_sohu_armenia.txt"
SEED_TITLE = "Russia: If the conflict moves to Asia, Russia will provide assistance to Armenia"


def _seed() -> tuple[str, str]:
    raw_title, body = SEED.read_text(encoding="utf-8").split("\n", 1)
    return raw_title, body


def _as_html(body: str) -> str:
    return "".join(f"<p>{p.strip()}</p>\n" for p in body.split("\n\n") if p.strip())


@pytest.mark.parametrize("feed_title", ["Nakka", None])
@pytest.mark.parametrize("as_html", [False, True])
def test_seed_article_cleans_to_the_article(feed_title: str | None, as_html: bool) -> None:
    """The Sohu seed loses its site suffix, ad slots, trailer, empty credit and disclaimer."""
    raw_title, body = _seed()
    content = _as_html(body) if as_html else body
    doc = clean_document(raw_title, content, is_html=as_html, feed_title=feed_title)
    assert doc.title == SEED_TITLE
    assert doc.text.startswith("China News Agency, Moscow, October 31")
    assert doc.text.endswith("in violation of the agreement.")
    for residue in ("[ad_", "Original title:", "(End up)", "Return to Sohu", "Editor:", "Disclaimer"):
        assert residue not in doc.text
    assert len(doc.text.split("\n\n")) == 6
    assert "[ad_1]" in doc.removed and "Editor:" in doc.removed


def test_seed_html_and_text_give_the_same_document() -> None:
    """Plain text and <p>-wrapped HTML of the same body clean identically."""
    raw_title, body = _seed()
    assert clean_document(raw_title, body, is_html=False) == clean_document(raw_title, _as_html(body))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTPS://Example.COM:443/News/Story?id=7&utm_source=rss&utm_medium=feed#comments",
            "https://example.com/News/Story?id=7",
        ),
        ("http://example.com:80/a?fbclid=xyz&b=2&gclid=1&a=1", "http://example.com/a?b=2&a=1"),
        ("https://example.com:8443/a?mc_cid=1&mc_eid=2&igshid=3", "https://example.com:8443/a"),
        (
            "https://example.com?ref_src=twsrc&spm=a.b&cmpid=x&_hsenc=1&_hsmi=2&yclid=3&dclid=4",
            "https://example.com/",
        ),
        (
            "https://example.com/search?q=caf%C3%A9+bar&UTM_Campaign=x&page=2",
            "https://example.com/search?q=caf%C3%A9+bar&page=2",
        ),
        ("  https://example.com/a#section-2  ", "https://example.com/a"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    """Tracking parameters, fragment and default port go; the rest keeps order and encoding."""
    assert canonical_url(url) == expected


def test_html_paragraphs_drop_chrome_and_split_on_blocks() -> None:
    """Blocks and <br><br> split paragraphs; scripts, nav and captions vanish; one <br> is a space."""
    html = (
        "<nav>Home | World</nav><h1>Head</h1><div>First&nbsp;line<br>same para</div>"
        "<script>var x=1;</script><p>Second<br><br>Third</p>"
        "<figure><img src=x><figcaption>A caption</figcaption></figure><p>  Fourth\n  para </p>"
    )
    assert to_paragraphs(html) == ["Head", "First line same para", "Second", "Third", "Fourth para"]


def test_plain_text_claimed_as_html_is_read_as_text() -> None:
    """A feed that says html but sends plain text still gets its blank-line paragraphs and entities."""
    assert to_paragraphs("AT&amp;T said\nthis.\n\nSecond one.") == ["AT&T said this.", "Second one."]


REAL = {
    "en": "The central bank raised its benchmark rate by a quarter point on Wednesday, citing persistent "
    "inflation in services and a labour market that remains tight despite slowing growth.",
    "zh": "国家统计局31日发布数据显示，10月份中国制造业采购经理指数为51.4%，"
    "比上月上升0.3个百分点，制造业继续保持稳步恢复态势。",
    "ru": "Центральный банк в среду повысил ключевую ставку на два процентных пункта, сославшись на "
    "устойчивую инфляцию и высокий спрос на кредиты со стороны населения.",
    "de": "Die Bundesregierung hat am Mittwoch ein neues Entlastungspaket beschlossen, das vor allem "
    "Familien mit geringem Einkommen und Rentnerinnen zugutekommen soll.",
    "fr": "Le gouvernement a présenté mercredi un projet de loi visant à réduire les délais d'attente "
    "dans les hôpitaux publics, une mesure réclamée depuis des années par les soignants.",
    "es": "El Gobierno aprobó este martes un nuevo paquete de ayudas para los agricultores afectados por "
    "la sequía, que se extenderá hasta finales del próximo año.",
    "ar": "أعلنت وزارة الصحة يوم الأربعاء عن خطة جديدة لتوسيع نطاق التطعيم في المناطق الريفية، "
    "وذلك بالتعاون مع منظمات دولية خلال الأشهر المقبلة.",
}
RESIDUE = {
    "en": [
        "ADVERTISEMENT",
        "Share this article on Facebook",
        "Follow us on Twitter for breaking news",
        "Sign up for our daily newsletter to get the top stories in your inbox.",
        "Read more: Markets slide as rates rise",
        "© 2024 Example Media. All rights reserved.",
        "The views expressed in this article are those of the author and do not reflect the position "
        "of this publication.",
        "(Reporting by Jane Doe; Editing by John Roe)",
        "Photo: Getty Images",
        "Story continues below advertisement",
        "(End)",
    ],
    "zh": [
        "（完）",
        "责任编辑：张三",
        "原标题：制造业继续稳步恢复",
        "相关阅读：统计局发布最新数据",
        "返回搜狐，查看更多",
        "免责声明：本文观点仅代表作者本人。",
        "点击关注我们的微信公众号",
        "版权所有 未经授权不得转载",
        "图片来源：网络",
        "广告",
    ],
    "ru": [
        "Читайте также: Банк России снизил прогноз",
        "Подписывайтесь на наш канал в Telegram",
        "Реклама",
        "Фото: ТАСС",
        "© 2024 РИА Новости. Все права защищены.",
        "Поделиться",
    ],
    "de": [
        "Anzeige",
        "Lesen Sie auch: Die Inflation sinkt weiter",
        "Folgen Sie uns auf Instagram",
        "Foto: dpa",
        "Alle Rechte vorbehalten.",
        "Mehr zum Thema: Rentenreform",
    ],
    "fr": [
        "Publicité",
        "Lire aussi : La réforme des retraites",
        "Suivez-nous sur Facebook",
        "Photo : AFP",
        "Tous droits réservés.",
        "Partager",
    ],
    "es": [
        "Publicidad",
        "Lea también: El precio de la luz baja",
        "Síguenos en Twitter",
        "Foto: EFE",
        "Todos los derechos reservados.",
        "Te puede interesar: Las claves del presupuesto",
    ],
    "ar": [
        "إعلان",
        "اقرأ أيضا: ارتفاع أسعار النفط",
        "تابعونا على تويتر",
        "جميع الحقوق محفوظة",
        "المصدر: وكالات",
    ],
}


@pytest.mark.parametrize("lang", sorted(RESIDUE))
def test_multilingual_residue_is_dropped(lang: str) -> None:
    """Each language's ad, share, follow, credit and copyright lines go; the real paragraph stays."""
    body = "\n\n".join([RESIDUE[lang][0], REAL[lang], *RESIDUE[lang][1:], REAL[lang]])
    doc = clean_document("Title", body, is_html=False)
    assert doc.text == f"{REAL[lang]}\n\n{REAL[lang]}"
    assert doc.removed == RESIDUE[lang]


@pytest.mark.parametrize(
    ("para", "expected"),
    [
        ("国家统计局发布最新数据，制造业继续恢复。（完）", "国家统计局发布最新数据，制造业继续恢复。"),
        ("The deal was signed on Monday. (End)", "The deal was signed on Monday."),
        ("Talks will resume next week.[ad_3]", "Talks will resume next week."),
        ("会谈将于下周恢复。（责任编辑：李四）", "会谈将于下周恢复。"),
        (
            "A long day in court ended without a verdict. "
            "The post Court adjourns appeared first on Example News.",
            "A long day in court ended without a verdict.",
        ),
    ],
)
def test_trailing_fragments_are_stripped(para: str, expected: str) -> None:
    """End markers, ad slots, editor credits and WordPress trailers are cut from inside a paragraph."""
    assert clean_document("T", para, is_html=False).text == expected


KEEP = [
    "Readers who subscribe to the newspaper's print edition saw prices rise by 12 percent this year, the "
    "publisher said, blaming paper costs. Share prices of the group fell 3 percent after the announcement, "
    "and analysts said more newspapers would follow with similar increases.",
    "Share prices fell 4 percent on Monday after the company cut its forecast.",
    "Copyright lawsuits against AI developers have multiplied this year.",
    "Related-party transactions rose sharply, the auditors found.",
    "Opinion polls do not necessarily reflect the final result, analysts said.",
    "Follow-up inspections found no further violations at the plant.",
    "Source code for the tool was published on Tuesday, and researchers said it would let anyone verify "
    "the results. Editor: the role went to a veteran reporter.",
    "订阅用户数量在第三季度增长了百分之十五。",
    "Por ejemplo, en 2020.",
    "اشترك في الاجتماع ممثلون عن عشرين دولة.",
]


@pytest.mark.parametrize("para", KEEP)
def test_real_paragraphs_that_mention_residue_words_are_kept(para: str) -> None:
    """Anchored, length-bounded rules leave real paragraphs alone."""
    doc = clean_document("T", para, is_html=False)
    assert doc.text == para
    assert doc.removed == []


@pytest.mark.parametrize(
    ("raw", "feed_title", "expected"),
    [
        ("Markets rally on rate hopes | Example News", "Example News", "Markets rally on rate hopes"),
        (
            "Example News - Markets rally on rate hopes",
            "Example News: Top Stories",
            "Markets rally on rate hopes",
        ),
        ("Markets rally on rate hopes – EXAMPLE", "Example News", "Markets rally on rate hopes"),
        ("Markets rally | Business | Example News", "Example News", "Markets rally"),
        ("Story_Nakka", "Nakka", "Story"),
        ("Covid-19 cases rise - again", "Example News", "Covid-19 cases rise - again"),
        ("Biden - Trump debate: five takeaways", "Example News", "Biden - Trump debate: five takeaways"),
        (
            "Elections 2010–2020 — a decade in charts",
            "Example News",
            "Elections 2010–2020 — a decade in charts",
        ),
        ("Oil rises - Reuters poll shows", None, "Oil rises - Reuters poll shows"),
        ("Tech | Example", None, "Tech | Example"),
    ],
)
def test_clean_title(raw: str, feed_title: str | None, expected: str) -> None:
    """Only a segment equal to a known site name is cut; other dashes stay."""
    assert clean_title(raw, feed_title=feed_title) == expected


def test_clean_title_site_names_and_original_title() -> None:
    """Configured site names are cut; an Original title line fixes a suffixed title."""
    assert clean_title("Der Haushalt steht » Tagesblatt", site_names=["Tagesblatt"]) == "Der Haushalt steht"
    assert clean_title("A headline_Portal", original_title="A headline") == "A headline"
    assert clean_title("A headline and more", original_title="A headline") == "A headline and more"


def test_url_site_label_is_a_title_suffix_candidate() -> None:
    """The URL's site label counts as a site name, and the URL comes back canonical."""
    doc = clean_document(
        "Budget passes - Sohu", "<p>Body text here.</p>", url="https://www.sohu.com/a/1?utm_source=x"
    )
    assert doc.title == "Budget passes"
    assert doc.url == "https://www.sohu.com/a/1"


def test_site_rules_file_is_scoped_to_its_domain(tmp_path: Path) -> None:
    """A site file adds rules that apply only on their domain, and site names for titles."""
    site = tmp_path / "site.toml"
    site.write_text(
        "site_names = ['Daily Planet']\n[[drop]]\nname='promo'\nmax_chars=80\n"
        "domains=['planet.example']\npattern='''^Planet Club members save'''\n",
        encoding="utf-8",
    )
    rules = load_rules(site)
    body = "<p>Real news.</p><p>Planet Club members save 10 %</p>"
    on_site = clean_document("Hi | Daily Planet", body, url="https://news.planet.example/x", rules=rules)
    elsewhere = clean_document("Hi", body, url="https://other.example/x", rules=rules)
    assert on_site.text == "Real news." and on_site.title == "Hi"
    assert "Planet Club members save 10 %" in elsewhere.text


def test_unanchored_rule_is_refused() -> None:
    """A rule that could match mid-paragraph is a configuration error, not a silent risk."""
    with pytest.raises(ConfigError, match="must start with"):
        parse_rules("[[drop]]\nname='x'\npattern='subscribe'\n")


def test_clean_rules_setting_is_parsed() -> None:
    """INGEST_CLEAN_RULES becomes a path; unset it is None."""
    assert Settings.from_env({"INGEST_CLEAN_RULES": "rules/site.toml"}).clean_rules == Path("rules/site.toml")
    assert Settings.from_env({}).clean_rules is None


def test_summary_is_cleaned_too() -> None:
    """The summary goes through the same paragraph rules."""
    doc = clean_document("T", "<p>Body.</p>", summary="<p>Short summary.</p><p>Read more »</p>")
    assert doc.summary == "Short summary."


def test_title_section_longer_than_headline_is_kept() -> None:
    """A trail segment is only a section when the headline left over is longer."""
    title = clean_title("Brexit | Trade deal | Example News", feed_title="Example News")
    assert title == "Brexit | Trade deal"


@pytest.mark.parametrize(
    ("raw", "feed_title", "names", "expected"),
    [
        ("Los vecinos exigen cambios | Público", None, ["Publico"], "Los vecinos exigen cambios"),
        (
            "Ukrainische Gegenoffensive: Ziele | Europa | DW | 28.04.2023",
            "DW.COM",
            [],
            "Ukrainische Gegenoffensive: Ziele",
        ),
        (
            "Post-Vac-Syndrom: Was wissen wir? – DW – 13.06.2023",
            "dw.com",
            [],
            "Post-Vac-Syndrom: Was wissen wir?",
        ),
        (
            "Einschlag in Elmshorn: Es war ein Meteorit | NDR.de - Nachrichten - Holstein",
            None,
            ["NDR"],
            "Einschlag in Elmshorn: Es war ein Meteorit",
        ),
        (
            "Die Fleißigsten im Landkreis - Landkreis München - SZ.de",
            "Süddeutsche.de",
            ["SZ"],
            "Die Fleißigsten im Landkreis - Landkreis München",
        ),
        (
            "Federal Reserve räumt Versäumnisse ein - DER SPIEGEL",
            None,
            ["SpiegelOnline"],
            "Federal Reserve räumt Versäumnisse ein",
        ),
        (
            "南海トラフ、一時調査 巨大地震、基準達せず：中日新聞Web",
            "中日新聞Web",
            [],
            "南海トラフ、一時調査 巨大地震、基準達せず",
        ),
        (
            "Ionos-Phishing: Masche soll Opfer überzeugen | heise online",
            None,
            ["Heise"],
            "Ionos-Phishing: Masche soll Opfer überzeugen",
        ),
        (
            "Bennett: Ich bin nicht dein Ball | Israel Nachrichten – Chadashoth Israel",
            "Israel Nachrichten – Chadashoth Israel",
            [],
            "Bennett: Ich bin nicht dein Ball",
        ),
        ("Hamas - Israel - Gaza: what we know", "DW", [], "Hamas - Israel - Gaza: what we know"),
        ("Brexit : the deal explained", "Example News", [], "Brexit : the deal explained"),
        ("Kurz - bündig - DW", "DW", [], "Kurz - bündig"),
    ],
)
def test_clean_title_generalised_site_forms(
    raw: str, feed_title: str | None, names: list[str], expected: str
) -> None:
    """Diacritics, domains, articles, dates and section trails beside the site name go; dashes stay."""
    assert clean_title(raw, feed_title=feed_title, site_names=names) == expected


@pytest.mark.parametrize(
    "para",
    [
        "Thanks for signing up!",
        "Keep an eye on your inbox for the latest sports news.",
        "There was an error processing your subscription.",
        "CLICK HERE TO GET THE FOX NEWS APP",
        "GET FOX BUSINESS ON THE GO BY CLICKING HERE",
        "Like this story? Share it with a friend!",
        "READ MORE: China plague outbreak confirmed in Beijing",
        "DON'T MISS",
        "You may also like...",
        "- Order Reprints",
        "Print Article",
        "Write to Al Root at allen.root@example.com",
        "Tags",
        "2019-11-19T08:57:40+01:00",
        "Updated at 1:23 p.m.",
        "Tell us what YOU think...",
        "Also on rt.com Journalists threatened with arrests as purge widens",
    ],
)
def test_page_chrome_is_dropped(para: str) -> None:
    """Sign-up feedback, app prompts, reprint links, tag labels and bare timestamps seen on pages go."""
    rules = load_rules()
    assert rules.dropping_rule(para, None), para


@pytest.mark.parametrize(
    "para",
    [
        "Click here to get more information or download this game.",
        "Read more about the plan: the council will publish its budget on Friday and hold hearings in May.",
        "Thank you, she said, before leaving the courtroom with her lawyer and two supporters.",
        "Don't miss the chance to see the comet, astronomers say: it will not return for 6,000 years.",
        "www.jeongdongtheater.com",
    ],
)
def test_page_chrome_rules_keep_real_text(para: str) -> None:
    """Paragraphs that merely start like chrome are article text and stay."""
    assert load_rules().dropping_rule(para, None) is None, para
