"""Text-quality metrics of explanations, each from its reference library.

BLEU-4 is sacrebleu's corpus BLEU (reported on the 0-1 scale), ROUGE-L the mean F-measure
of Google's ``rouge-score``, BERTScore the mean F1 of ``bert-score`` computed with the
local all-MiniLM-L6-v2 (its last layer, no baseline rescaling: no download). Diversity:
distinct-n is the share of unique n-grams among all generated n-grams, USR the share of
unique sentences among the generated ones.
"""

from __future__ import annotations

from typing import Any

MINILM_LAYER = 6


def bleu4(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    _check(hypotheses, references)
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score) / 100.0


def rouge_l(hypotheses: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    _check(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [
        scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references, strict=True)
    ]
    return sum(scores) / len(scores)


def bertscore_f1(
    hypotheses: list[str], references: list[str], model: str | None = None, batch_size: int = 64
) -> float:
    """Mean BERTScore F1 with ``model`` (a local folder; default: the packaged MiniLM)."""
    from bert_score import score

    from recllm.models.backbone import BackboneConfig, resolve_model_dir

    _check(hypotheses, references)
    folder = model or str(resolve_model_dir(BackboneConfig()))
    _, _, f1 = score(
        hypotheses,
        references,
        model_type=folder,
        num_layers=MINILM_LAYER,
        batch_size=batch_size,
        verbose=False,
    )
    return float(f1.mean())


def distinct_n(texts: list[str], n: int) -> float:
    grams = [
        tuple(words[i : i + n])
        for t in texts
        for words in [t.lower().split()]
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def unique_sentence_ratio(texts: list[str]) -> float:
    return len(set(texts)) / len(texts) if texts else 0.0


def text_metrics(
    hypotheses: list[str], references: list[str], with_bertscore: bool = True
) -> dict[str, Any]:
    """Every metric of the explanation report, named as in ``results/explain/*.json``."""
    figures = {
        "bleu4": round(bleu4(hypotheses, references), 4),
        "rouge_l": round(rouge_l(hypotheses, references), 4),
        "distinct_1": round(distinct_n(hypotheses, 1), 4),
        "distinct_2": round(distinct_n(hypotheses, 2), 4),
        "usr": round(unique_sentence_ratio(hypotheses), 4),
    }
    if with_bertscore:
        figures["bertscore_f1"] = round(bertscore_f1(hypotheses, references), 4)
    return figures


def _check(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(
            f"need as many references as hypotheses (got {len(hypotheses)} and {len(references)})"
        )
