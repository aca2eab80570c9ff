"""Training queries for the intent classifier, generated from templates and a catalogue.

Variety is the point: many phrasings per intent, titles and genres drawn from the catalogue
(so the classifier meets real names), counts and years in words and digits, and noise a
person adds: politeness or bluntness, casing, missing punctuation and small typos. Out of
scope covers what a recommender's chat box receives otherwise: other assistants' tasks,
shop customer service, facts about an item (not a recommendation), chit-chat, other
languages and keyboard mash. The hand-written evaluation set is never used here.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from recllm.routing.catalog import Catalog
from recllm.routing.schema import Intent

NOUNS = {
    "movies": ["movie", "film", "flick", "picture", "title"],
    "products": ["product", "item", "thing", "pick", "buy"],
}
RECOMMEND = [
    "recommend {n} {genre} {noun}s",
    "can you recommend some {genre} {noun}s",
    "i'm looking for {genre} {noun}s",
    "any {genre} {noun}s you'd suggest",
    "suggest {n} {noun}s for me",
    "what {noun} should i {verb} next",
    "what else would i enjoy",
    "got any {genre} {noun}s",
    "find me {n} {noun}s like {title}",
    "{noun}s similar to {title}",
    "if i liked {title}, what should i {verb}",
    "more stuff like {title}",
    "i really enjoyed {title}, give me something in that style",
    "something along the lines of {title} please",
    "{genre} {noun}s {years}",
    "show me {genre} {noun}s {years}",
    "top {n} {noun}s for me",
    "give me your {n} best {noun}s",
    "i need something new to {verb}",
    "surprise me with a {genre} {noun}",
    "pick a {noun} for me",
    "what's good in {genre}",
    "list {n} {noun}s i might like",
    "i want to {verb} a {genre} {noun}",
    "next {noun} for me?",
    "fans of {title} also like what?",
    "{genre} {noun}s {years}, {n} of them",
    "more like {title}",
    "recommendations please",
    "i'm bored, suggest something",
    "help me choose a {noun}",
    "my next {noun}?",
    # requests without a verb: naming what one wants is asking for it
    "{genre} {noun} for {occasion}",
    "a {genre} {noun} for {occasion}",
    "{audience} {noun}s for {occasion}",
    "{audience} {genre} {noun}",
    "something {genre} for {occasion}",
    "{genre} {noun}s {years}, nothing too long",
    "in the mood for a {genre} {noun}",
    "i'm in the mood for {genre} {noun}s {occasion}",
    "looking for a {noun} for {occasion}",
]
EXPLAIN = [
    "why did you recommend {title}",
    "why {title}?",
    "why {title} for me",
    "explain why you suggested {title}",
    "what's the reason you picked {title}",
    "how come {title} showed up",
    "why am i seeing {title}",
    "why is {title} on my list",
    "what makes you think i'd like {title}",
    "justify recommending {title}",
    "tell me why {title} was chosen",
    "explain the {title} suggestion",
    "why would {title} suit me",
    "give me the reason behind {title}",
    "why this one?",
    "why did you pick that",
    "explain this pick",
    "explain that suggestion to me",
    "why this {genre} {noun}",
    "what in my history led to {title}",
    "why do you think {title} fits me",
    "reason for suggesting {title}?",
    "i don't see why {title} is there, explain",
    "why was that recommended",
    "can you explain your last recommendation",
    "on what basis did you choose {title}",
    "what made {title} a match for me",
    "why should i {verb} {title}",
]
BOTH = [
    "recommend {n} {genre} {noun}s and explain why",
    "suggest something and tell me why",
    "what should i {verb} next and why",
    "give me {n} {noun}s with reasons",
    "pick a {genre} {noun} for me and explain the choice",
    "{noun}s like {title}, and say why you chose them",
    "recommend {genre} {noun}s, with an explanation for each",
    "top {n} picks for me and the reasons behind them",
    "find me {noun}s similar to {title} and justify them",
    "what would you recommend and why",
    "show me {genre} {noun}s {years} and explain each one",
    "suggest {n} {noun}s and tell me what makes each a fit",
    "recommend me something, explain your reasoning",
    "i'd like {n} {genre} {noun}s plus why they suit me",
    "your best {noun}s for me, with a short reason each",
    "recommend and explain",
    "give me a {noun} and a reason",
    "which {genre} {noun}s fit me, and why?",
    "list {noun}s i'd like and explain why",
    "suggest something like {title} and explain the link",
]
OUT_OF_SCOPE = [
    "what's the weather tomorrow",
    "will it snow this weekend",
    "book me a flight to {city}",
    "reserve a hotel in {city}",
    "order a pizza",
    "set an alarm for 7am",
    "call my mom",
    "what time is it in {city}",
    "how far is {city} from here",
    "who won the game last night",
    "what's {a} plus {b}",
    "calculate {a} times {b}",
    "translate 'good morning' into french",
    "write a python function to sort a list",
    "tell me a story",
    "sing me a song",
    "write a haiku about the sea",
    "what's the news today",
    "hi",
    "hello there",
    "thanks",
    "good night",
    "who are you",
    "are you human",
    "what can you do",
    "track my package",
    "where is my delivery",
    "i want a refund",
    "change my shipping address",
    "update my credit card",
    "delete my account",
    "how do i log in",
    "talk to a human agent",
    "who directed {title}",
    "who stars in {title}",
    "when was {title} released",
    "how long is {title}",
    "what is {title} rated",
    "how much does {title} cost",
    "is {title} in stock",
    "what are the ingredients of {title}",
    "is {title} cruelty free",
    "what's the plot of {title}",
    "play {title}",
    "buy {title} now",
    "add {title} to my cart",
    "what is the capital of {country}",
    "how tall is mount everest",
    "define photosynthesis",
    "what's the meaning of life",
    "give me directions to the station",
    "turn off the lights",
]
FOREIGN = [
    "¿qué me recomiendas?",
    "quiero ver una película de terror",
    "recommande-moi un film",
    "quel parfum me conseilles-tu ?",
    "kannst du mir einen film empfehlen",
    "warum hast du das empfohlen",
    "consigliami un film",
    "me indica um filme bom",
    "por qué me recomiendas esto",
    "welches shampoo soll ich kaufen",
    "おすすめの映画は？",
    "推荐一部电影",
    "посоветуй фильм",
    "ما هو أفضل فيلم",
    "bonjour, comment ça va",
    "hola, buenos días",
]
POLITE_PREFIX = ["", "", "", "please ", "hey, ", "hi! ", "so ", "ok "]
ASKING_PREFIX = ["could you ", "can you ", "would you ", "pls "]  # before a verb only
VERBS = ("recommend", "suggest", "find", "show", "give", "pick", "list", "tell", "explain", "help")
POLITE_SUFFIX = ["", "", "", " please", " thanks", " thank you", "?", "!", " :)", " asap"]
CITIES = ["paris", "tokyo", "new york", "berlin", "madrid", "london", "sydney", "rome"]
COUNTRIES = ["france", "peru", "canada", "kenya", "japan", "norway"]
OCCASIONS = [
    "tonight",
    "the weekend",
    "a rainy sunday",
    "a long flight",
    "date night",
    "a road trip",
    "a lazy evening",
    "friday night",
    "the holidays",
]
AUDIENCES = ["family", "kids'", "children's", "teen", "grown-up", "beginner", "gift"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "ten", "a couple of", "a few"]


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    intent: Intent


def generate(catalogs: list[Catalog], per_intent: int, seed: int = 0) -> list[LabelledQuery]:
    """``per_intent`` queries of each intent, spread over the catalogues, shuffled."""
    rng = random.Random(seed)
    pools = {
        Intent.RECOMMEND: RECOMMEND,
        Intent.EXPLAIN: EXPLAIN,
        Intent.RECOMMEND_AND_EXPLAIN: BOTH,
        Intent.OUT_OF_SCOPE: OUT_OF_SCOPE,
    }
    queries = []
    for intent, templates in pools.items():
        for i in range(per_intent):
            catalog = catalogs[i % len(catalogs)]
            if intent is Intent.OUT_OF_SCOPE and rng.random() < 0.2:
                text = _gibberish(rng) if rng.random() < 0.4 else rng.choice(FOREIGN)
            else:
                text = _fill(rng.choice(templates), catalog, rng)
                text = _noise(text, rng)
            queries.append(LabelledQuery(text, intent))
    rng.shuffle(queries)
    return queries


def _fill(template: str, catalog: Catalog, rng: random.Random) -> str:
    kind = "movies" if catalog.years.any() else "products"
    values = {
        "n": rng.choice([str(rng.randint(2, 20)), *NUMBER_WORDS]),
        "genre": _genre_phrase(catalog, rng),
        "noun": rng.choice(NOUNS[kind]),
        "verb": "watch" if kind == "movies" else rng.choice(["buy", "try", "get"]),
        "title": _title_phrase(catalog, rng),
        "years": _years_phrase(rng),
        "occasion": rng.choice(OCCASIONS),
        "audience": rng.choice(AUDIENCES),
        "city": rng.choice(CITIES),
        "country": rng.choice(COUNTRIES),
        "a": str(rng.randint(2, 999)),
        "b": str(rng.randint(2, 99)),
    }
    return " ".join(template.format(**values).split())


def _genre_phrase(catalog: Catalog, rng: random.Random) -> str:
    if rng.random() < 0.25 or not catalog.genre_terms:
        return ""
    return " ".join(rng.choice(catalog.genre_terms).tokens)


def _title_phrase(catalog: Catalog, rng: random.Random) -> str:
    """A title as people type it: whole, or a product's first words."""
    title = str(rng.choice(catalog.titles)) or "it"
    if catalog.years.any():  # films are called by their title
        return title.lower() if rng.random() < 0.3 else title
    words = title.split(",")[0].split()
    return " ".join(words[: rng.randint(2, 4)])


def _years_phrase(rng: random.Random) -> str:
    year = rng.randint(1930, 2015)
    return rng.choice(
        [
            f"from the {year // 10 % 10}0s",
            f"from the {year // 10 * 10}s",
            f"before {year}",
            f"after {year}",
            f"since {year}",
            f"between {year} and {year + rng.randint(1, 15)}",
            f"{year}-{year + rng.randint(1, 9)}",
            f"{year} – {year + rng.randint(1, 9)}",
            f"from {year} to {year + rng.randint(1, 15)}",
            f"from {year}",
            "",
        ]
    )


def _noise(text: str, rng: random.Random) -> str:
    prefixes = POLITE_PREFIX + (ASKING_PREFIX if text.startswith(VERBS) else [])
    text = rng.choice(prefixes) + text + rng.choice(POLITE_SUFFIX)
    roll = rng.random()
    if roll < 0.15:
        text = text.upper()
    elif roll < 0.45:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.3:
        text = _typo(text, rng)
    if rng.random() < 0.2:
        text = text.translate(str.maketrans("", "", "?!,.'"))
    return " ".join(text.split())


def _typo(text: str, rng: random.Random) -> str:
    """Swap, drop or double one letter."""
    positions = [i for i, c in enumerate(text) if c.isalpha()]
    if len(positions) < 4:
        return text
    i = rng.choice(positions[1:-1])
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def _gibberish(rng: random.Random) -> str:
    words = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8)))
        for _ in range(rng.randint(1, 5))
    ]
    return " ".join(words)
