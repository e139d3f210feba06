"""Language stage: ISO 639-1 codes, `und` when unsure, hints only break ties."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ingest.clean import clean_document
from ingest.errors import ConfigError
from ingest.language.detect import (
    _FAST_TO_LINGUA,
    _LINGUA_BY_CODE,
    _ONLY_LINGUA,
    BLEND_SURE,
    HIGH_CANDIDATES,
    HIGH_MAX_LANGUAGES,
    LanguageDetector,
    LoadBudget,
    _Blend,
    _models,
    confidences,
    high_accuracy_languages,
    high_accuracy_loads,
    high_candidates,
    is_short,
    long_candidates,
    normalize_hint,
)
from ingest.language.high import HIGH_LOAD_FIRST, HIGH_RSS_BUDGET_MB, HighAccuracy
from ingest.models import LanguageResult
from ingest.settings import Settings

SEED = Path(__file__).resolve().parent.parent / "app" / "demo" / "feeds" / "seed_sohu_armenia.txt"

SAMPLES = {
    "en": "The central bank raised its benchmark interest rate on Wednesday, citing persistent inflation "
    "in services and a labour market that remains tight despite slowing growth.",
    "zh": "国家统计局31日发布数据显示，10月份中国制造业采购经理指数为51.4%，比上月上升0.3个百分点。",
    "ru": "Центральный банк в среду повысил ключевую ставку, сославшись на устойчивую инфляцию и "
    "высокий спрос на кредиты со стороны населения.",
    "de": "Die Bundesregierung hat am Mittwoch ein neues Entlastungspaket beschlossen, das vor allem "
    "Familien mit geringem Einkommen zugutekommen soll.",
    "fr": "Le gouvernement a présenté mercredi un projet de loi visant à réduire les délais d'attente "
    "dans les hôpitaux publics, une mesure réclamée par les soignants.",
    "es": "El Gobierno aprobó este martes un nuevo paquete de ayudas para los agricultores afectados por "
    "la sequía, que se extenderá hasta finales del próximo año.",
    "ar": "أعلنت وزارة الصحة يوم الأربعاء عن خطة جديدة لتوسيع نطاق التطعيم في المناطق الريفية بالتعاون "
    "مع منظمات دولية.",
}


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    """One detector for the module: models load once."""
    return LanguageDetector()


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_detects_each_language(detector: LanguageDetector, code: str) -> None:
    """A news sentence in each core language gets its ISO 639-1 code with high confidence."""
    result = detector.detect(SAMPLES[code])
    assert result.code == code
    assert 0.5 < result.confidence <= 1.0


def test_seed_article_is_english(detector: LanguageDetector) -> None:
    """The cleaned seed article is English."""
    raw_title, body = SEED.read_text(encoding="utf-8").split("\n", 1)
    doc = clean_document(raw_title, body, is_html=False)
    assert detector.detect(f"{doc.title}\n\n{doc.text}").code == "en"


def test_long_text_is_sampled_not_confused(detector: LanguageDetector) -> None:
    """A long article whose tail is another language is judged by its opening."""
    text = SAMPLES["de"] * 8 + SAMPLES["en"] * 30
    assert detector.detect(text).code == "de"


@pytest.mark.parametrize("text", ["", "OK", "12:30 — 4:2", "Breaking", "!!! ??? 2024"])
def test_short_text_is_undetermined(detector: LanguageDetector, text: str) -> None:
    """Too little text gives `und` with zero confidence."""
    assert detector.detect(text).code == "und"
    assert detector.detect(text).confidence == 0.0


def test_min_chars_is_configurable() -> None:
    """A lower threshold lets a short headline through."""
    text = "Regierung beschließt Entlastung"
    assert LanguageDetector(min_chars=200).detect(text).code == "und"
    assert LanguageDetector(min_chars=10).detect(text).code == "de"


def test_hint_does_not_override_a_clear_result(detector: LanguageDetector) -> None:
    """A wrong declared language does not beat clear evidence."""
    assert detector.detect(SAMPLES["fr"], hint="en").code == "fr"
    assert detector.detect(SAMPLES["ru"], hint="uk-UA").code == "ru"


def test_hint_breaks_a_near_tie(detector: LanguageDetector) -> None:
    """Text that fits two close languages follows the hint, and is `und` without one."""
    text = "Saya suka makan nasi goreng setiap hari bersama keluarga di rumah."
    assert detector.detect(text).code == "und"
    assert detector.detect(text, hint="ms").code == "ms"
    assert detector.detect(text, hint="id").code == "id"


def test_mixed_text_is_undetermined(detector: LanguageDetector) -> None:
    """Half one language, half another: unsure, so `und`."""
    text = "Die Regierung hat beschlossen und the government has decided"
    assert detector.detect(text) == LanguageResult("und", 0.0)
    assert detector.detect(text, hint="de").code == "de"


@pytest.mark.parametrize(
    ("hint", "expected"),
    [("en-US", "en"), ("ZH_hans", "zh"), ("no", "nb"), ("xx", None), (None, None), ("", None)],
)
def test_normalize_hint(hint: str | None, expected: str | None) -> None:
    """Feed language tags reduce to lingua's ISO 639-1 codes."""
    assert normalize_hint(hint) == expected


def _eager() -> LanguageDetector:
    """Evaluation mode: always a best guess, short texts re-ranked by the high-accuracy models."""
    return LanguageDetector(min_chars=1, abstain=False, short_text_models=True)


SHORT = {
    "de": "unterstützung finden",
    "fr": "une grande maison",
    "es": "la casa grande",
    "it": "una bella giornata",
    "nl": "een mooie dag",
    "sv": "en vacker dag",
    "pl": "piękny dzień",
    "pt": "um belo dia",
    "fi": "kaunis päivä",
    "cs": "krásný den",
}


def test_short_text_is_reranked_by_high_accuracy_models() -> None:
    """A word pair the blend is unsure of ("een mooie dag": Dutch 0.79, Afrikaans 0.21) goes to
    lingua's 1- to 5-gram models."""
    eager = _eager()
    text = SHORT["nl"]
    low = confidences(eager._lingua.compute_language_confidence_values(text))
    assert eager._blend.rank(low, eager._fast._decide(text))[0][1] < BLEND_SURE
    assert eager.detect(text).code == "nl"
    assert "nl" in high_accuracy_languages()


def test_short_text_the_blend_is_sure_of_loads_no_model() -> None:
    """With the short-text models on, a text the blend is BLEND_SURE of keeps its answer and loads
    nothing: the models are paid for only where the cheap detectors are unsure."""
    eager = _eager()
    before = high_accuracy_loads()
    assert eager.detect("hyvää yötä kaikille").code == "fi"
    assert eager.detect(SHORT["de"]).code == "de"
    assert high_accuracy_loads() == before


def test_high_accuracy_models_stay_bounded() -> None:
    """However many languages short texts come in, at most HIGH_MAX_LANGUAGES models stay loaded."""
    eager = _eager()
    for text in SHORT.values():
        eager.detect(text)
    assert 0 < len(high_accuracy_languages()) <= HIGH_MAX_LANGUAGES


def test_deployed_detector_abstains_where_the_eager_one_answers() -> None:
    """The service's defaults keep `und` for two words; evaluation mode answers."""
    assert LanguageDetector().detect(SHORT["nl"]).code == "und"
    assert _eager().detect(SHORT["nl"]).code != "und"


def test_short_is_counted_in_letters_as_lingua_does() -> None:
    """lingua's high-accuracy cut-off counts letters, not digits, punctuation or spaces."""
    assert is_short(
        "Во 1930–31 година, Мид се приклучил на колеџот Тринити, Кембриџ, откако бил "
        "поканет од Денис Робертсон, со кого се сретнал преку неговата тетка."
    )
    assert not is_short("a" * 60 + " " + "b" * 60)
    assert is_short("1234 " * 30)
    assert not is_short("x " * 300)  # a whole article sample is not counted: long, and cheap


# Over 120 characters, under 120 letters, mistaken by the trigram models alone.
FEW_LETTERS = {
    "mk": "Во 1930–31 година, Мид се приклучил на колеџот Тринити, Кембриџ, откако бил поканет од "
    "Денис Робертсон, со кого се сретнал преку неговата тетка.",
    "nl": "Andere Amerikaanse artiesten zijn Patti Smith, Robert Cray, KEB Mo, Ruben Blades, Diana Krall, "
    "De zwerfkatten, Los Lobos en Gloria Estefan.",
}


@pytest.mark.parametrize("code", sorted(FEW_LETTERS))
def test_long_text_with_few_letters_is_reranked(code: str) -> None:
    """A sentence with fewer than 120 letters goes to the high-accuracy models, as in lingua."""
    assert _eager().detect(FEW_LETTERS[code]).code == code


def test_high_candidates_are_the_blends_best_and_the_hint(detector: LanguageDetector) -> None:
    """The blend's best come first, at most HIGH_CANDIDATES of them, none far behind; the hint is added."""
    text = "canada unmatched"
    low = confidences(detector._lingua.compute_language_confidence_values(text))
    blended = detector._blend.rank(low, detector._fast._decide(text))
    picks = high_candidates(blended, "sw")
    assert picks[0] == blended[0][0] and picks[-1] == "sw"
    assert len(picks) == len(set(picks)) <= HIGH_CANDIDATES + 1
    assert high_candidates([("nl", 0.9), ("af", 0.0999), ("de", 0.0001)], None) == ["nl", "af"]
    assert high_candidates([("nl", 0.9), ("af", 0.1)], "nl") == ["nl", "af"]


def test_long_candidates_hold_the_relatives_the_hint_and_the_prior() -> None:
    """Long text is ranked over py3langid's best, their families, the hint and English only."""
    codes = long_candidates([("es", 0.9), ("it", 0.05), ("qu", 0.01)], "de")
    assert {"es", "ca", "pt", "it", "la", "de", "en"} <= codes
    assert "qu" not in codes and "gl" not in codes and "ru" not in codes  # lingua has no gl


# Article-length news text in languages py3langid confuses with a neighbour (lingua decides).
NEIGHBOURS = {
    "ca": "El Govern ha aprovat aquest dimarts un nou paquet d'ajudes per als pagesos afectats per la "
    "sequera, que s'allargarà fins a final de l'any vinent. La consellera ha explicat que les "
    "ajudes arribaran a més de dotze mil explotacions i que el termini per demanar-les s'obrirà "
    "la setmana que ve.",
    "pt": "O Governo aprovou esta terça-feira um novo pacote de apoios para os agricultores afetados "
    "pela seca, que se prolongará até ao final do próximo ano. A ministra explicou que os apoios "
    "vão chegar a mais de doze mil explorações e que o prazo para os pedir abre na próxima semana.",
    "es": "El Gobierno aprobó este martes un nuevo paquete de ayudas para los agricultores afectados "
    "por la sequía, que se prolongará hasta finales del próximo año. La ministra explicó que las "
    "ayudas llegarán a más de doce mil explotaciones y que el plazo para pedirlas se abrirá la "
    "semana que viene.",
    "it": "Il governo ha approvato martedì un nuovo pacchetto di aiuti per gli agricoltori colpiti dalla "
    "siccità, che durerà fino alla fine del prossimo anno. La ministra ha spiegato che gli aiuti "
    "raggiungeranno oltre dodicimila aziende e che le domande si potranno presentare dalla "
    "prossima settimana.",
    "nb": "Regjeringen la tirsdag fram en ny støttepakke til bønder som er rammet av tørken, og ordningen "
    "skal gjelde ut neste år. Statsråden sa at støtten vil nå mer enn tolv tusen gårdsbruk, og at "
    "søknadsfristen åpner i løpet av neste uke. Bondelaget mener likevel at pengene kommer for sent.",
    "da": "Regeringen fremlagde tirsdag en ny hjælpepakke til landmænd, der er ramt af tørken, og "
    "ordningen skal gælde resten af næste år. Ministeren sagde, at støtten vil nå mere end tolv "
    "tusind landbrug, og at der kan søges fra i næste uge. Landbrugets organisationer mener dog, "
    "at hjælpen kommer for sent.",
    "id": "Pemerintah pada hari Selasa mengumumkan paket bantuan baru bagi para petani yang terdampak "
    "kekeringan, yang akan berlaku hingga akhir tahun depan. Menteri mengatakan bantuan itu akan "
    "menjangkau lebih dari dua belas ribu petani dan pendaftaran dibuka mulai minggu depan.",
    "cs": "Vláda v úterý schválila nový balíček pomoci pro zemědělce zasažené suchem, který bude platit "
    "až do konce příštího roku. Ministryně uvedla, že pomoc dostane více než dvanáct tisíc "
    "podniků a že žádosti bude možné podávat od příštího týdne.",
    "sk": "Vláda v utorok schválila nový balík pomoci pre poľnohospodárov zasiahnutých suchom, ktorý bude "
    "platiť až do konca budúceho roka. Ministerka uviedla, že pomoc dostane viac ako dvanásť "
    "tisíc podnikov a že žiadosti bude možné podávať od budúceho týždňa.",
    "uk": "Уряд у вівторок ухвалив новий пакет допомоги для фермерів, які постраждали від посухи, і він "
    "діятиме до кінця наступного року. Міністерка пояснила, що допомогу отримають понад "
    "дванадцять тисяч господарств, а подати заявки можна буде з наступного тижня.",
    "ru": "Правительство во вторник одобрило новый пакет помощи для фермеров, пострадавших от засухи, "
    "и он будет действовать до конца следующего года. Министр пояснила, что помощь получат "
    "более двенадцати тысяч хозяйств, а подать заявки можно будет со следующей недели.",
}


def test_languages_only_lingua_knows_are_always_long_candidates(detector: LanguageDetector) -> None:
    """py3langid cannot propose Maori, Tswana or Tsonga, so long text always offers them to lingua."""
    fast = {_FAST_TO_LINGUA.get(code, code) for code in detector._fast.nb_classes}
    assert set(_LINGUA_BY_CODE) - fast == set(_ONLY_LINGUA)
    assert set(_ONLY_LINGUA) <= long_candidates([("en", 1.0)], None)
    maori = (
        "Ko te kaupapa matua o te hui i tēnei rā he kōrero mō te oranga o ngā tamariki me ngā "
        "whānau puta noa i te motu, ā, i whakaae ngā rangatira katoa kia mahi tahi rātou."
    )
    assert LanguageDetector(abstain=False).detect(maori).code == "mi"


@pytest.mark.parametrize("code", sorted(NEIGHBOURS))
def test_long_text_ranked_over_candidates_agrees_with_all_languages(code: str) -> None:
    """Confusable neighbours: lingua over the candidate set picks what lingua over all 75 picks."""
    text = NEIGHBOURS[code]
    assert not is_short(text)
    values = _models()[1].compute_language_confidence_values(text)
    assert values[0].language.iso_code_639_1.name.lower() == code
    result = LanguageDetector().detect(text)
    assert result.code == code and result.confidence >= 0.5


def test_load_budget_allows_a_burst_then_a_rate() -> None:
    """A token bucket: `burst` loads at once, then per_minute; None never refuses."""
    budget = LoadBudget(60.0, burst=3)
    assert budget.take(2) and budget.take(1)
    assert not budget.take(1)
    budget._at -= 1.5  # as if 1.5 s went by: 1.5 loads earned
    assert budget.take(1) and not budget.take(1)
    unlimited = LoadBudget(None, burst=0)
    assert all(unlimited.take(5) for _ in range(100))


def test_spent_load_budget_leaves_the_blend_or_the_loaded_candidates() -> None:
    """With no load left, a short text whose candidates are not loaded keeps the blend's answer
    and loads nothing; the same text is re-ranked once the budget allows it."""
    spent = LanguageDetector(min_chars=1, abstain=False, short_text_models=True)
    spent.load_budget = LoadBudget(0.0, burst=0)
    spent._high = HighAccuracy(HIGH_MAX_LANGUAGES)  # its own bookkeeping: nothing loaded yet
    text = "een mooie dag"  # the blend is unsure: Dutch 0.79, Afrikaans 0.21
    low = confidences(spent._lingua.compute_language_confidence_values(text))
    blended = spent._blend.rank(low, spent._fast._decide(text))
    assert blended[0][1] < BLEND_SURE
    assert spent.detect(text) == LanguageResult(blended[0][0], round(blended[0][1], 4))
    assert spent._high.loads == 0
    spent.load_budget = LoadBudget(None)
    spent.detect(text)
    assert spent._high.loads == min(HIGH_LOAD_FIRST, len(high_candidates(blended, None))) > 0


def test_only_the_first_candidates_load_the_rest_count_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates past the first HIGH_LOAD_FIRST are re-ranked only once their models are loaded
    (by a text that needed them first): recent texts' languages, at no extra load."""
    monkeypatch.setattr("ingest.language.high.HIGH_RSS_BUDGET_MB", 10**6)  # other tests' models stay
    high = HighAccuracy(HIGH_MAX_LANGUAGES)
    budget = LoadBudget(None)
    nl, af, de, en = (_LINGUA_BY_CODE[c] for c in ("nl", "af", "de", "en"))
    ranked = high.rank("een mooie dag", [nl, af, de, en], budget)
    assert ranked is not None and {c for c, _ in ranked} == {"nl", "af"}
    assert high.loads == 2
    high.rank("ein schöner Tag", [de, en], budget)
    ranked = high.rank("een mooie dag", [nl, af, de, en], budget)
    assert ranked is not None and {c for c, _ in ranked} == {"nl", "af", "de", "en"}
    assert high.loads == 4


def test_model_loads_are_counted() -> None:
    """The benchmark separates model loading from detection by this counter: a text whose
    candidates' models are loaded already loads none."""
    eager = _eager()
    eager.detect(SHORT["cs"])  # the blend is unsure (Czech 0.72, Slovak 0.28): the models decide
    assert high_accuracy_loads() > 0
    before = high_accuracy_loads()
    eager.detect(SHORT["cs"])
    assert high_accuracy_loads() == before


def test_short_text_models_off_leave_short_texts_to_the_low_accuracy_ranking() -> None:
    """With INGEST_SHORT_TEXT_MODELS=0 a headline-only entry never loads a high-accuracy model."""
    plain = LanguageDetector(min_chars=1, abstain=False, short_text_models=False)
    before = high_accuracy_loads()
    for text in (*SHORT.values(), *FEW_LETTERS.values()):
        assert plain.detect(text).code != "und"
    assert high_accuracy_loads() == before


def test_short_text_blends_both_detectors() -> None:
    """Short text: lingua low's confidence x py3langid's probability ** BLEND_WEIGHT. Where lingua
    is torn between two relatives, py3langid's preference decides; where both agree it stands."""
    fast, _ = _models()
    blend = _Blend(fast)
    torn = [("nb", 0.46), ("da", 0.44), ("sv", 0.10)]
    scores = np.zeros(len(fast.nb_classes), dtype=np.float32)
    scores[fast.nb_classes.index("da")] = 0.8
    scores[fast.nb_classes.index("no")] = 0.2  # py3langid says `no` for Norwegian Bokmål
    ranked = blend.rank(torn, scores)
    assert ranked[0][0] == "da" and ranked[1][0] == "nb"
    assert abs(sum(p for _, p in ranked) - 1.0) < 1e-6
    scores[:] = 0.0
    scores[fast.nb_classes.index("no")] = 1.0
    assert blend.rank(torn, scores)[0] == ("nb", pytest.approx(1.0, abs=1e-3))


def test_blend_gives_languages_py3langid_lacks_their_relatives_share() -> None:
    """Tswana (py3langid lacks it) is scored with its relatives' probability, so a Sotho-leaning
    py3langid does not veto it; Maori (no relative) gets a uniform share, not zero."""
    fast, _ = _models()
    blend = _Blend(fast)
    scores = np.zeros(len(fast.nb_classes), dtype=np.float32)
    scores[fast.nb_classes.index("st")] = 0.9
    scores[fast.nb_classes.index("en")] = 0.1
    assert blend.rank([("tn", 0.7), ("st", 0.3)], scores)[0][0] == "tn"
    ranked = dict(blend.rank([("mi", 0.9), ("en", 0.1)], scores))
    assert ranked["mi"] > 0.0


def test_short_sentences_of_related_languages_stay_apart_in_the_default_path() -> None:
    """The blend keeps close relatives (nb/da, es/fr) apart on one-line texts, where both detectors
    already agree: it must not trade their right answers for its gains elsewhere."""
    short = {
        "en": "The council voted to close the bridge on Sunday.",
        "de": "Der Stadtrat hat die Brücke am Sonntag gesperrt.",
        "fr": "Le conseil a fermé le pont dimanche.",
        "es": "El ayuntamiento cerró el puente el domingo.",
        "nb": "Bystyret stengte broen søndag etter stormen.",
        "da": "Byrådet lukkede broen søndag efter stormen.",
    }
    plain = LanguageDetector(min_chars=1, abstain=False)
    assert {code: plain.detect(text).code for code, text in short.items()} == {c: c for c in short}


def test_settings_turn_the_short_text_models_on_with_a_load_cap() -> None:
    """The service re-ranks unsure short texts by default, with a cap on model loads per minute."""
    default = Settings.from_env({})
    assert default.short_text_models and default.short_text_loads_per_minute == 12.0
    off = Settings.from_env({"INGEST_SHORT_TEXT_MODELS": "0", "INGEST_SHORT_TEXT_LOADS_PER_MINUTE": "3"})
    assert not off.short_text_models and off.short_text_loads_per_minute == 3.0
    with pytest.raises(ConfigError, match="INGEST_SHORT_TEXT_LOADS_PER_MINUTE='-1' is invalid"):
        Settings.from_env({"INGEST_SHORT_TEXT_LOADS_PER_MINUTE": "-1"})


def test_the_worker_detector_follows_the_settings(settings: Settings) -> None:
    """The pipeline a worker builds takes both short-text settings, not the library defaults."""
    from app.runtime import Runtime

    ctx = Runtime(replace(settings, short_text_models=False, short_text_loads_per_minute=3.0))
    try:
        detector = ctx.pipeline.preparer.detector
        assert detector.short_text_models is False
        assert detector.load_budget.per_minute == 3.0
    finally:
        ctx.close()


def test_memory_budget_unloads_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near the RSS budget, loading a language first unloads the least recently used ones (never
    the text's own candidates): resident memory, not only the language count, bounds the set."""
    high = HighAccuracy(HIGH_MAX_LANGUAGES)
    budget = LoadBudget(None)
    nl, af, de, en = (_LINGUA_BY_CODE[c] for c in ("nl", "af", "de", "en"))
    monkeypatch.setattr("ingest.language.high._rss_mb", lambda: 0.0)
    high.rank("een mooie dag", [nl, af], budget)
    assert set(high.loaded()) == {"nl", "af"}
    monkeypatch.setattr("ingest.language.high._rss_mb", lambda: float(HIGH_RSS_BUDGET_MB))
    high.rank("ein schöner Tag", [de, en], budget)
    assert set(high.loaded()) == {"de", "en"}
