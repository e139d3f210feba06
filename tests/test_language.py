"""Language stage: ISO 639-1 codes, `und` when unsure, hints only break ties."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.clean import clean_document
from ingest.language import (
    _LINGUA_BY_CODE,
    HIGH_MAX_CANDIDATES,
    HIGH_MAX_LANGUAGES,
    LanguageDetector,
    _relatives,
    high_accuracy_languages,
    high_accuracy_loads,
    is_short,
    normalize_hint,
)
from ingest.models import LanguageResult

SEED = Path(__file__).resolve().parent.parent / "ingest" / "demo" / "feeds" / "seed_sohu_armenia.txt"

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


@pytest.mark.parametrize(("hint", "expected"), [
    ("en-US", "en"), ("ZH_hans", "zh"), ("no", "nb"), ("xx", None), (None, None), ("", None)])
def test_normalize_hint(hint: str | None, expected: str | None) -> None:
    """Feed language tags reduce to lingua's ISO 639-1 codes."""
    assert normalize_hint(hint) == expected


def _eager() -> LanguageDetector:
    """Evaluation mode: always a best guess, short texts re-ranked by the high-accuracy models."""
    return LanguageDetector(min_chars=1, abstain=False, short_text_models=True)


SHORT = {"de": "unterstützung finden", "fr": "une grande maison", "es": "la casa grande",
         "it": "una bella giornata", "nl": "een mooie dag", "sv": "en vacker dag", "pl": "piękny dzień",
         "pt": "um belo dia", "fi": "kaunis päivä", "cs": "krásný den"}


def test_short_text_is_reranked_by_high_accuracy_models() -> None:
    """Word pairs get an answer when asked to always answer, from lingua's 1- to 5-gram models."""
    eager = _eager()
    assert eager.detect(SHORT["de"]).code == "de"
    assert "de" in high_accuracy_languages()


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
    assert is_short("Во 1930–31 година, Мид се приклучил на колеџот Тринити, Кембриџ, откако бил "
                    "поканет од Денис Робертсон, со кого се сретнал преку неговата тетка.")
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


def test_candidates_are_linguas_bounded_and_include_prior_and_hint(detector: LanguageDetector) -> None:
    """py3langid's codes lingua lacks are skipped; the prior and the hint are always in; capped."""
    text = "canada unmatched"
    ranked = [(v.language.iso_code_639_1.name.lower(), v.value)
              for v in detector._lingua.compute_language_confidence_values(text)]
    picks = detector._candidates(text, ranked, "sw", "uz")
    assert "en" in picks and "sw" in picks
    assert set(picks) <= set(_LINGUA_BY_CODE)
    assert len(picks) == len(set(picks)) <= HIGH_MAX_CANDIDATES


def test_relatives_of_the_winner_get_a_second_look() -> None:
    """A winner's close relatives missing from the candidates are listed, within the cap."""
    assert _relatives("af", ["af", "de"]) == ["nl"]
    assert _relatives("cs", ["cs", "sk"]) == []
    assert _relatives("en", ["en"]) == []
    assert len(_relatives("zu", ["zu"])) <= HIGH_MAX_CANDIDATES - 1


def test_model_loads_are_counted() -> None:
    """The benchmark separates model loading from detection by this counter: a text whose
    candidates' models are loaded already loads none."""
    eager = _eager()
    eager.detect("kaunis päivä")
    before = high_accuracy_loads()
    eager.detect("kaunis päivä")
    assert high_accuracy_loads() == before


def test_service_default_leaves_short_texts_to_the_low_accuracy_ranking() -> None:
    """Without INGEST_SHORT_TEXT_MODELS a headline-only entry never loads a high-accuracy model."""
    from ingest.language import high_accuracy_loads

    plain = LanguageDetector(min_chars=1, abstain=False)
    before = high_accuracy_loads()
    for text in (*SHORT.values(), *FEW_LETTERS.values()):
        assert plain.detect(text).code != "und"
    assert high_accuracy_loads() == before
