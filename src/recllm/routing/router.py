"""The task router: a query in, an intent with its slots out, for any input at all.

Input no classifier should see is decided before it: empty or whitespace-only text, text
without a single letter, and text mostly in a non-Latin script are out of scope, with a
note saying why. Very long input is cut (characters, then the classifier's tokens) and the
route says so. Slots are read only for in-scope intents and only with a catalogue. A short
query the classifier puts out of scope that only names what it wants is a request (see
:func:`reads_as_request`), and the route says so.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from recllm.errors import RecLLMError
from recllm.routing.catalog import Catalog
from recllm.routing.classifier import IntentClassifier
from recllm.routing.schema import Intent, Route, Slots
from recllm.routing.slots import ITEM_NOUNS, extract_slots, find_genres
from recllm.routing.text import normalise, singular

MAX_CHARS = 1000  # a query longer than this is cut before anything reads it
ROUTER_FILE = "router.json"
REQUEST_NOTE = "read as a recommendation request: it names what it wants and asks nothing else"
# Words of a question or of another task ("who directed Fargo", "is this product vegan",
# "play some music", "add it to my cart"): a query with none of them that names what the
# catalogue holds ("kids movie for saturday afternoon") is asking for it.
NOT_A_REQUEST = frozenset(
    [
        "what",
        "whats",
        "who",
        "whos",
        "whom",
        "whose",
        "when",
        "where",
        "wheres",
        "why",
        "how",
        "hows",
        "which",
        "is",
        "isnt",
        "are",
        "arent",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "dont",
        "doesnt",
        "can",
        "cant",
        "could",
        "will",
        "would",
        "should",
        "shall",
        "may",
        "might",
        "must",
        "has",
        "have",
        "had",
        "its",
        "thats",
        "play",
        "buy",
        "order",
        "add",
        "reserve",
        "call",
        "set",
        "cancel",
        "track",
        "delete",
        "update",
        "change",
        "translate",
        "write",
        "define",
        "calculate",
        "turn",
        "reset",
        "return",
        "refund",
        "ship",
        "deliver",
        "cost",
        "price",
        "stock",
    ]
)
# Asking why is explanation, never a plain request.
EXPLAINING = frozenset(["explain", "explanation", "justify", "reason", "reasons", "reasoning"])
WANTING = (" in the mood for ", " looking for ", " i want ", " i need ", " id like ", " craving ")
MAX_REQUEST_WORDS = 12


class Router:
    """Intent classifier plus slot extraction over an optional catalogue."""

    def __init__(self, classifier: IntentClassifier, catalog: Catalog | None = None) -> None:
        self.classifier = classifier
        self.catalog = catalog
        self.labels = [Intent(label) for label in classifier.config.labels]

    @classmethod
    def load(cls, folder: Path, catalog: Catalog | None = None) -> Router:
        """The router saved by ``recllm train-router`` in ``folder`` (its ``router.json``
        names the classifier it serves with, the distilled student by default)."""
        folder = Path(folder)
        manifest = folder / ROUTER_FILE
        if not manifest.is_file():
            raise RecLLMError(
                f"{folder} holds no {ROUTER_FILE}: not a trained router; run `recllm train-router`"
            )
        serving = json.loads(manifest.read_text()).get("serving", "student")
        return cls(IntentClassifier.from_pretrained(folder / serving), catalog)

    def route(self, text: str) -> Route:
        return self.route_many([text])[0]

    def route_many(self, texts: list[str]) -> list[Route]:
        """Routes in input order; the classifier runs once over every in-scope text."""
        if not all(isinstance(t, str) for t in texts):
            raise RecLLMError("queries must be strings")
        routes: list[Route | None] = [None] * len(texts)
        pending: dict[int, tuple[str, list[str]]] = {}
        for i, text in enumerate(texts):
            reason = _unreadable(text)
            if reason:
                routes[i] = Route(text, Intent.OUT_OF_SCOPE, 1.0, Slots(), (reason,))
                continue
            notes = []
            read = text.strip()
            if len(read) > MAX_CHARS:
                read = read[:MAX_CHARS]
                notes.append(f"query cut to its first {MAX_CHARS} characters")
            tokens = self.classifier.count_tokens(read)
            if tokens > self.classifier.config.max_length:
                notes.append(
                    f"intent read from the first {self.classifier.config.max_length} of "
                    f"{tokens} tokens"
                )
            pending[i] = (read, notes)
        if pending:
            probs = self.classifier.predict([read for read, _ in pending.values()])
            for (i, (read, notes)), p in zip(pending.items(), probs, strict=True):
                best = int(p.argmax())
                intent = self.labels[best]
                if (
                    intent is Intent.OUT_OF_SCOPE
                    and Intent.RECOMMEND in self.labels
                    and reads_as_request(read, self.catalog)
                ):
                    best = self.labels.index(Intent.RECOMMEND)
                    intent = Intent.RECOMMEND
                    notes.append(REQUEST_NOTE)
                slots = (
                    extract_slots(read, self.catalog)
                    if self.catalog is not None and intent is not Intent.OUT_OF_SCOPE
                    else Slots()
                )
                routes[i] = Route(texts[i], intent, float(p[best]), slots, tuple(notes))
        return [r for r in routes if r is not None]


def reads_as_request(text: str, catalog: Catalog | None = None) -> bool:
    """Whether a short query names what it wants (an item noun, or a genre of the
    catalogue) and is neither a question nor another task; "in the mood for ..." and the
    like want something whatever else they say. The classifier learnt requests from
    phrasings with a verb and sends verbless ones out of scope; this catches them."""
    words = normalise(text, drop_articles=False).split()
    if not words or len(words) > MAX_REQUEST_WORDS:
        return False
    names_wanted = any(singular(w) in ITEM_NOUNS for w in words) or bool(
        catalog is not None and find_genres(words, catalog)
    )
    if not names_wanted or EXPLAINING & set(words):
        return False
    padded = f" {' '.join(words)} "
    return any(phrase in padded for phrase in WANTING) or not NOT_A_REQUEST & set(words)


def _unreadable(text: str) -> str | None:
    """Why a text is out of scope before any model reads it, or None."""
    if not text.strip():
        return "empty query"
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "no words in the query"
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    if latin / len(letters) < 0.5:
        return "not in English (mostly non-Latin script)"
    return None
