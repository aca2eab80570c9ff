"""Distillation losses: score-distribution KL and attention-map KL, both counted only at
the positions the recommendation-knowledge mask keeps.

The teacher's side comes as a :class:`TeacherBatch`: at each position its K best item
logits (or the whole catalogue) and the log-normaliser of its full softmax at the
distillation temperature, so the probability of the items outside the K is known
exactly and enters the KL as one "tail" bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_EPS = 1e-8


@dataclass
class TeacherBatch:
    """Teacher outputs aligned with a (B, L) batch. Shapes: ``logits`` (B, L, K);
    ``indices`` (B, L, K) item ids of those logits, None when K is the whole catalogue
    in item order; ``lse`` (B, L) logsumexp of all N logits / T; ``maps`` one (B, L, L)
    head-averaged attention map per mapped layer, rows over item keys only."""

    logits: Tensor
    indices: Tensor | None
    lse: Tensor
    maps: list[Tensor]


def score_kl(
    student_scores: Tensor,
    teacher_logits: Tensor,
    teacher_indices: Tensor | None,
    teacher_lse: Tensor,
    temperature: float,
) -> Tensor:
    """T^2 KL(p_teacher || p_student) over the catalogue, averaged over positions.

    Args:
        student_scores: (P, N) student logits of every catalogue item.
        teacher_logits: (P, K) teacher logits of its K kept items.
        teacher_indices: (P, K) their item ids; None when K = N in item order.
        teacher_lse: (P,) logsumexp over all N teacher logits divided by T.
    With K < N the items outside the K form one bucket on both sides (its teacher mass
    is 1 - the K's), so the KL is exact for that partition of the catalogue.
    """
    if student_scores.shape[0] == 0:
        return student_scores.sum() * 0.0
    log_q = torch.log_softmax(student_scores.float() / temperature, dim=-1)  # (P, N)
    if teacher_indices is not None:
        log_q = log_q.gather(1, teacher_indices.long())  # (P, K)
    log_p = teacher_logits.float() / temperature - teacher_lse.float().unsqueeze(1)
    p = log_p.exp()
    kl = (p * (log_p - log_q)).sum(1)  # (P,)
    if teacher_indices is not None and teacher_indices.shape[1] < student_scores.shape[1]:
        p_tail = (1.0 - p.sum(1)).clamp(min=0.0)
        q_kept = torch.logsumexp(log_q, dim=1).exp().clamp(max=1.0 - 1e-6)
        log_q_tail = torch.log1p(-q_kept)
        kl = kl + p_tail * (torch.log(p_tail + _EPS) - log_q_tail)
    return kl.mean() * temperature**2


def head_averaged_item_block(maps: Tensor, n_prompt: int) -> Tensor:
    """(B, heads, P + L, P + L) attention probabilities -> (B, L, L): heads averaged,
    the item-to-item block, each row renormalised over item keys (so a model with a
    prompt and one without compare on the same footing)."""
    block = maps.float().mean(1)[:, n_prompt:, n_prompt:]
    return block / block.sum(-1, keepdim=True).clamp(min=_EPS)


def attention_kl(
    student_maps: list[Tensor], teacher_maps: list[Tensor], positions: Tensor
) -> Tensor:
    """Mean over mapped layers of the row-wise KL(teacher || student) of (B, L, L)
    attention maps, averaged over the query rows where ``positions`` (B, L) is True."""
    if len(student_maps) != len(teacher_maps):
        raise ValueError(
            f"{len(student_maps)} student maps but {len(teacher_maps)} teacher maps: the layer "
            "map must pair every student layer with one teacher layer"
        )
    losses = []
    for student, teacher in zip(student_maps, teacher_maps, strict=True):
        if student.shape != teacher.shape:
            raise ValueError(
                f"attention maps differ in shape: student {tuple(student.shape)}, "
                f"teacher {tuple(teacher.shape)}"
            )
        rows_s, rows_t = student[positions], teacher[positions].float()  # (P, L)
        kl = (rows_t * (torch.log(rows_t + _EPS) - torch.log(rows_s + _EPS))).sum(-1)
        losses.append(kl.mean() if len(kl) else kl.sum())
    return torch.stack(losses).mean()
