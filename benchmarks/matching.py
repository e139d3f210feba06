"""Benchmark of the match stage: articles per second against 1k, 10k and 100k subscriptions.

Subscriptions and articles are generated from one vocabulary of place names,
person names, organisations and news words (plus filler prose), so articles
hit a realistic share of subscriptions. `--corpus DIR` reads articles from
the *.txt files of DIR instead (first line: title).

    .venv/bin/python benchmarks/matching.py [--sizes 1000,10000,100000] [--articles 200]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.match import MatchDocument, Matcher


def _words(text: str) -> list[str]:
    return text.split()


PLACES = _words("""
Armenia Azerbaijan Georgia Ukraine Russia Poland Germany France Spain Italy Portugal Greece Turkey
Syria Lebanon Israel Jordan Egypt Libya Sudan Ethiopia Kenya Somalia Nigeria Ghana Senegal Mali Niger Chad
Iran Iraq Kuwait Qatar Oman Yemen Pakistan India Bangladesh Nepal China Japan Korea Taiwan Vietnam Thailand
Cambodia Myanmar Malaysia Indonesia Philippines Australia Brazil Argentina Chile Peru Colombia Venezuela
Mexico Canada Cuba Haiti Yerevan Baku Tbilisi Kyiv Moscow Warsaw Berlin Paris Madrid Rome Lisbon Athens
Ankara Damascus Beirut Jerusalem Amman Cairo Tripoli Khartoum Nairobi Lagos Accra Dakar Tehran Baghdad Doha
Islamabad Delhi Mumbai Dhaka Kathmandu Beijing Shanghai Tokyo Seoul Taipei Hanoi Bangkok Jakarta Manila
Sydney Brasilia Santiago Lima Bogota Caracas Havana Ottawa Toronto Washington London Brussels Geneva Vienna
Prague Budapest Bucharest Sofia Belgrade Zagreb Helsinki Stockholm Oslo Copenhagen Dublin Edinburgh Karabakh
Crimea Donbas Gaza Sahel Kashmir Xinjiang Tibet Balochistan Darfur Tigray Kurdistan Catalonia""")
FIRST = _words("""
Nikol Ilham Vladimir Volodymyr Emmanuel Olaf Giorgia Pedro Recep Benjamin Abdel Narendra Xi
Fumio Yoon Joe Kamala Donald Rishi Keir Ursula Antonio Jens Mark Justin Luiz Javier Claudia Gustavo Cyril
Bola William Abiy Ali Hassan Mohammed Ahmed Fatima Maria Anna Elena Olga Irina Sergei Dmitri Andrzej Petr
Viktor Klaus Angela Robert Sarah David Michael James John Laura Sofia Lucas Marco Paolo Jean Pierre Luc
Hans Lars Erik Ingrid Astrid Yuki Hiroshi Kenji Min Ji Wei Li Chen Rahul Priya Amit Sunita Omar Layla
Youssef Karim Nadia Tariq Samir Leila Ana Carlos Diego Camila Mateo Valentina""")
LAST = _words("""
Pashinyan Aliyev Putin Zelensky Macron Scholz Meloni Sanchez Erdogan Netanyahu Sisi Modi Jinping
Kishida Suk-yeol Biden Harris Trump Sunak Starmer Leyen Guterres Stoltenberg Rutte Trudeau Lula Milei
Sheinbaum Petro Ramaphosa Tinubu Ruto Ahmed Khamenei Rouhani Salman Thani Sharif Hasina Prachanda Albanese
Morrison Orban Fiala Tusk Duda Nehammer Kovacs Novak Horvat Petrov Ivanov Smirnov Kuznetsov Popov Sokolov
Lebedev Kozlov Novikov Morozov Volkov Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann
Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Garcia Rodriguez Martinez Lopez
Gonzalez Perez Sanchez Romero Torres Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino
Tanaka Suzuki Takahashi Watanabe Yamamoto Nakamura Kim Lee Park Choi Jung Kang Cho Yoon Wang Zhang Liu
Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Khan Singh Kumar Sharma Patel Gupta Hussein Haddad
Nasser Mansour Aziz Rahman Karimi Hosseini Mohammadi""")
ORGS = _words("""
NATO UN EU OPEC IMF WHO UNESCO UNICEF Interpol Europol Pentagon Kremlin Gazprom Rosneft Aramco
Tesla Apple Google Microsoft Amazon Meta Nvidia Intel Samsung Huawei Alibaba Tencent Toyota Volkswagen
Siemens Airbus Boeing Shell BP Exxon Chevron Pfizer Moderna AstraZeneca Novartis Roche Bayer BASF Nestle
Unilever Walmart Netflix Disney Spotify Uber Airbnb OpenAI Anthropic DeepMind SpaceX Hamas Hezbollah
Taliban Wagner Frontex Eurostat Bundesbank Fed ECB""")
TOPICS = _words("""
ceasefire election inflation recession unemployment tariff sanctions embargo blockade invasion
offensive counteroffensive airstrike drone missile nuclear uranium enrichment refugee asylum migration
border protest strike riot coup referendum parliament senate congress budget deficit debt bond yield
currency devaluation interest rate mortgage housing earthquake tsunami flood drought wildfire hurricane
typhoon cyclone heatwave pandemic vaccine outbreak cholera malaria measles vaccination hospital surgery
climate emissions carbon methane renewable solar wind hydrogen battery lithium semiconductor chip
cyberattack ransomware hacker espionage spy extradition indictment verdict acquittal sentence appeal
treaty summit negotiation mediation truce hostage prisoner exchange humanitarian famine aid convoy
corridor pipeline grain wheat fertilizer oil gas coal electricity blackout grid merger acquisition
takeover bankruptcy layoffs strike union wage pension retirement healthcare insurance lawsuit antitrust
regulation privacy surveillance censorship journalist election fraud recount ballot turnout coalition
opposition resignation impeachment scandal corruption bribery embezzlement smuggling trafficking cartel
militia insurgency terrorism bombing shooting massacre genocide tribunal investigation""")
FILLER = _words("""
the a an of to in on for with at by from as that this these those it its was were is are be been
has have had will would could should may might said says say told according officials government minister
president prime spokesman statement week month year day today yesterday tomorrow after before during while
people country city region area local national international report reports reported new old first last
more most less many several some other another such also however but and or not no yes only just still
again further meanwhile although because since until about around over under between against among into
through across city talks meeting plan plans policy decision move moves support call calls warned warning
expected likely major key senior former current official sources source analysts experts data figures
percent million billion number numbers increase decrease rise fall higher lower growth
economy market""")
NAMES = [f"{f} {s}" for f in FIRST for s in LAST]


SYLLABLES = _words("""
ka ri mo ta ne lu vi sa do re an el or ba ko mi zu te na gi ar ve lo su ha ki po ra
mel dor vin tas kor lin zar bel mon ter""")


def long_tail(rng: random.Random, count: int) -> list[str]:
    """Invented proper nouns (towns, firms, people): the long tail real news is full of."""
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))).capitalize())
    return sorted(found)


def vocabulary(rng: random.Random, head_only: bool = False) -> tuple[list[str], list[str]]:
    """Topic words and multi-word names: a head of common news words plus a long tail.

    Words are drawn half from the ~700-word head, half from 30,000 invented names,
    so (as in real subscriptions) a few terms are popular and most are rare.
    """
    head = PLACES + ORGS + TOPICS + LAST
    names = rng.sample(NAMES, 3000)
    if head_only:
        return head, names
    tail = long_tail(rng, 30_000)
    names += [f"{rng.choice(FIRST)} {t}" for t in tail[:10_000]]
    return head * (len(tail) // len(head)) + tail, names


def make_query(rng: random.Random, words: list[str], names: list[str]) -> str:
    """One subscription query in one of the shapes subscribers write."""
    w = lambda: rng.choice(words)  # noqa: E731
    n = lambda: f'"{rng.choice(names)}"'  # noqa: E731
    shapes = [
        lambda: w(),
        lambda: f"{w()} {w()}",
        lambda: n(),
        lambda: f"{n()} {w()}",
        lambda: f"({w()} OR {w()} OR {w()}) {w()}",
        lambda: f"{w()} {w()} -{w()}",
        lambda: f"{w()[:5].lower()}* {w()}" if True else "",
        lambda: f'"{w()} {w()}"~5',
        lambda: f"{w()} NEAR/10 {w()}",
        lambda: f"title:{w()} lang:en",
        lambda: f"{n()} OR ({w()} AND {w()})",
        lambda: f"{w()} domain:example-news.com",
    ]
    query = rng.choice(shapes)()
    return query if "*" not in query or len(query.split("*")[0]) >= 3 else w()


def make_article(rng: random.Random, words: list[str], names: list[str]) -> MatchDocument:
    """A 2-5 KB article: filler prose with a few topic words and names."""
    topical = rng.sample(words, 16) + [rng.choice(names) for _ in range(4)]
    target = rng.randint(2000, 5000)
    sentences: list[str] = []
    size = 0
    while size < target:
        body = rng.choices(FILLER, k=rng.randint(8, 20))
        for _ in range(rng.randint(1, 3)):
            body.insert(rng.randrange(len(body)), rng.choice(topical))
        sentence = " ".join(body).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    title = " ".join(rng.sample(topical, 3)).title()
    host = rng.choice(["example-news.com", "www.bbc.co.uk", "news.example.org"])
    return MatchDocument(
        title,
        " ".join(sentences),
        rng.choice(["en", "en", "fr", "de"]),
        f"https://{host}/rss",
        f"https://{host}/a/{rng.randrange(10**6)}",
    )


def read_corpus(directory: Path) -> list[MatchDocument]:
    """Articles from text files: the first line is the title, the rest the text."""
    docs = []
    for path in sorted(directory.glob("*.txt")):
        title, _, text = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        docs.append(MatchDocument(title.strip(), text, None, None, None))
    return docs


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; psutil elsewhere if installed)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def traced_bytes(queries: list[tuple[str, str]]) -> int:
    """Bytes a matcher of these queries holds, as tracemalloc counts them."""
    tracemalloc.start()
    matcher = Matcher(queries)
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del matcher
    return traced


def run_size(
    size: int, docs: list[MatchDocument], vocab: tuple[list[str], list[str]], seed: int, repeat: int
) -> None:
    """Build a matcher of `size` subscriptions and time every article against it.

    Each article is matched `repeat` times and its fastest run kept, which filters out
    scheduler noise from other processes on the machine.
    """
    rng = random.Random(seed)
    words, names = vocab
    queries = [(f"sub-{i}", make_query(rng, words, names)) for i in range(size)]
    gc.collect()
    rss_before = rss_bytes()
    started = time.perf_counter()
    matcher = Matcher(queries)
    build_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()  # a long-lived index: keep the cyclic GC from rescanning it (as a worker would)
    rss_delta = rss_bytes() - rss_before
    matcher.match(docs[0])  # builds the wildcard automaton
    timings, matches = [], 0
    for doc in docs:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            found = matcher.match(doc)
            runs.append((time.perf_counter() - started) * 1000)
        timings.append(min(runs))
        matches += len(found)
    gc.unfreeze()
    del matcher
    gc.collect()
    traced = traced_bytes(queries)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(
        f"{size:>7} subs | build {build_s:6.2f} s | RSS +{rss_delta / 2**20:6.1f} MiB | "
        f"traced {traced / 2**20:6.1f} MiB | median {statistics.median(timings):6.3f} ms | "
        f"p99 {p99:6.3f} ms | max {timings[-1]:6.3f} ms | {matches / len(docs):6.1f} matches/article"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--corpus", type=Path, help="directory of .txt articles (first line: title)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per article; the fastest is kept")
    parser.add_argument(
        "--head-only",
        action="store_true",
        help="draw every term from the ~700 common words: many matches per article",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rng = random.Random(args.seed)
    words, names = vocabulary(random.Random(args.seed), args.head_only)
    docs = (
        read_corpus(args.corpus)
        if args.corpus
        else [make_article(rng, words, names) for _ in range(args.articles)]
    )
    kb = statistics.fmean(len(d.title) + len(d.text) for d in docs) / 1024
    print(f"{len(docs)} articles, mean {kb:.1f} KB; python {sys.version.split()[0]}")
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, docs, (words, names), args.seed + size, args.repeat)


if __name__ == "__main__":
    main()
