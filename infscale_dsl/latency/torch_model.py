"""Plain PyTorch modules of a Shape: the same decoder as infscale_dsl.nn.model (pre-norm RMSNorm,
rotary positions, SwiGLU, grouped-query attention, bias-free linears), written the way eager
Hugging Face models are, so that timing it measures eager PyTorch.

Needs torch; import it through torch_backend, which says how to install torch when it is absent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .shapes import Shape

ROTARY_BASE = 10_000.0
RMS_NORM_EPSILON = 1e-6  # as the jax model (nnx.RMSNorm's default), not torch's dtype epsilon


class KVCache:
    """Preallocated keys and values of every layer: (n_layers, B, n_kv_heads, max_len, head_dim)."""

    def __init__(self, shape: Shape, batch: int, max_len: int, dtype: torch.dtype, device):
        size = (shape.n_layers, batch, shape.n_kv_heads, max_len, shape.head_dim)
        self.keys = torch.zeros(size, dtype=dtype, device=device)
        self.values = torch.zeros(size, dtype=dtype, device=device)


class Rotary(nn.Module):
    """cos and sin of rotary positions, precomputed for max_len positions: (max_len, head_dim)."""

    def __init__(self, head_dim: int, max_len: int):
        super().__init__()
        inverse_frequency = ROTARY_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inverse_frequency)
        angles = torch.cat([angles, angles], dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """x: (B, heads, T, head_dim) at positions start .. start + T - 1."""
        length = x.shape[-2]
        cos = self.cos[start:start + length].to(x.dtype)
        sin = self.sin[start:start + length].to(x.dtype)
        first, second = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-second, first], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = shape.n_heads, shape.n_kv_heads, shape.head_dim
        self.query = nn.Linear(shape.d_model, shape.n_heads * shape.head_dim, bias=False)
        self.key = nn.Linear(shape.d_model, shape.n_kv_heads * shape.head_dim, bias=False)
        self.value = nn.Linear(shape.d_model, shape.n_kv_heads * shape.head_dim, bias=False)
        self.out = nn.Linear(shape.n_heads * shape.head_dim, shape.d_model, bias=False)

    def forward(self, x, rotary: Rotary, keys, values, start: int):
        """x: (B, T, d_model); keys, values: this layer's cache (B, n_kv_heads, max_len, hd).
        A prompt (T > 1) must start at position 0; a decode step (T = 1) may start anywhere."""
        batch, length, _ = x.shape
        q = self.query(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.key(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.value(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotary(q, start), rotary(k, start)
        end = start + length
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        attended = F.scaled_dot_product_attention(
            q, keys[:, :, :end], values[:, :, :end], is_causal=length > 1, enable_gqa=True)
        return self.out(attended.transpose(1, 2).reshape(batch, length, -1))


class SwiGLU(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.gate = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)
        self.up = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)
        self.down = nn.Linear(shape.ffn_hidden, shape.d_model, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.attention_norm = nn.RMSNorm(shape.d_model, eps=RMS_NORM_EPSILON)
        self.attention = Attention(shape)
        self.mlp_norm = nn.RMSNorm(shape.d_model, eps=RMS_NORM_EPSILON)
        self.mlp = SwiGLU(shape)

    def forward(self, x, rotary, keys, values, start):
        x = x + self.attention(self.attention_norm(x), rotary, keys, values, start)
        return x + self.mlp(self.mlp_norm(x))


class TransformerLM(nn.Module):
    def __init__(self, shape: Shape, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layers))
        self.norm = nn.RMSNorm(shape.d_model, eps=RMS_NORM_EPSILON)
        self.rotary = Rotary(shape.head_dim, max_len)
        self.lm_head = nn.Linear(shape.d_model, shape.vocab, bias=False)
        if shape.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor, cache: KVCache, start: int) -> torch.Tensor:
        """tokens (B, T) at positions start .. start + T - 1 -> logits of the last one (B, vocab)."""
        x = self.embed(tokens)  # (B, T, d_model)
        for layer, block in enumerate(self.blocks):
            x = block(x, self.rotary, cache.keys[layer], cache.values[layer], start)
        return self.lm_head(self.norm(x[:, -1]))


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
