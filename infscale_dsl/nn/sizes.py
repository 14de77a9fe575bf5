"""A decoder-only transformer's sizes from its shape, in plain Python.

The Flax model (model.py) and the shapes that latency runs time (latency/shapes.py) both count
parameters: the runs table's N and a latency row's params_N must agree for the two tables to
join, so both count here. No JAX: latency/shapes.py loads on machines and in CLI help without it.
"""
from __future__ import annotations

import math

FFN_ROUNDING = 32  # the SwiGLU hidden width rounds up to a multiple of this


def head_dim(d_model: int, n_heads: int) -> int:
    return d_model // n_heads


def ffn_hidden(d_model: int, ffn_multiplier: float) -> int:
    """The SwiGLU hidden width: ffn_multiplier * d_model, rounded up to FFN_ROUNDING."""
    return FFN_ROUNDING * math.ceil(ffn_multiplier * d_model / FFN_ROUNDING)


def parameter_counts(d_model: int, n_layers: int, n_heads: int, n_kv_heads: int, ffn_multiplier: float,
                     vocab: int, tie_embeddings: bool) -> dict[str, int]:
    """`embedding` is the token table plus, when untied, the output projection; `non_embedding`
    is everything else (attention, MLP, norms); `total` both."""
    d, hd = d_model, head_dim(d_model, n_heads)
    attention = d * n_heads * hd * 2 + d * n_kv_heads * hd * 2  # q, o; k, v
    mlp = 3 * d * ffn_hidden(d_model, ffn_multiplier)  # gate, up, down
    norms = 2 * d
    non_embedding = n_layers * (attention + mlp + norms) + d  # + the final norm
    embedding = vocab * d * (1 if tie_embeddings else 2)
    return dict(total=non_embedding + embedding, non_embedding=non_embedding, embedding=embedding)


class ShapeSizes:
    """The widths every shape record derives the same way: mixed into the model's config
    (model.py) and latency's Shape, which both carry d_model, n_heads and ffn_multiplier."""

    @property
    def head_dim(self) -> int:
        return head_dim(self.d_model, self.n_heads)

    @property
    def ffn_hidden(self) -> int:
        return ffn_hidden(self.d_model, self.ffn_multiplier)
