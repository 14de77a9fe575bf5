"""The torch backend: eager PyTorch, timed as the paper timed Hugging Face `generate`.

A Python loop calls the model once per token with a KV cache (greedy), so each decode step pays
PyTorch's per-operation dispatch: on a GPU at batch 1 that overhead, not memory traffic, sets
the time, and it grows with the number of layers. torch is optional; it is imported here, only
when this backend is used.
"""
from __future__ import annotations

from ..errors import ConfigError, Diagnostic
from .roofline import cpu_name
from .shapes import BenchSettings, Shape


def _torch():
    try:
        import torch
    except ModuleNotFoundError:
        raise ConfigError(Diagnostic(
            "the torch backend needs PyTorch, which is not installed",
            hint="pip install 'infscale-dsl[torch]', or use --backend jax")) from None
    return torch


def _device():
    torch = _torch()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name() -> str:
    torch = _torch()
    device = _device()
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def library_versions() -> str:
    return f"torch {_torch().__version__}"


class Generator:
    """Greedy generation of one shape with random weights: `prefill()` then `decode(token)`.

    The harness times the two calls separately, calling `synchronize` before each clock read."""

    def __init__(self, shape: Shape, settings: BenchSettings, batch: int):
        torch = _torch()
        from .torch_model import KVCache, TransformerLM, count_parameters

        self.torch = torch
        self.device = _device()
        self.output_len = settings.output_len
        self.prompt_len = settings.prompt_len
        dtype = getattr(torch, settings.dtype)
        max_len = settings.prompt_len + settings.output_len
        torch.manual_seed(settings.seed)
        with torch.device(self.device):
            self.model = TransformerLM(shape, max_len).to(dtype).eval()
        self.param_count = count_parameters(self.model)
        self.cache = KVCache(shape, batch, max_len, dtype, self.device)
        numbers = torch.Generator().manual_seed(settings.seed)
        self.prompt = torch.randint(shape.vocab, (batch, settings.prompt_len), generator=numbers).to(self.device)

    def prefill(self):
        """The prompt through the model: the first generated token (B,)."""
        with self.torch.inference_mode():
            return self.model(self.prompt, self.cache, start=0).argmax(-1)

    def decode(self, first_token):
        """output_len - 1 more tokens, one model call each: all output tokens (B, output_len)."""
        tokens = [first_token]
        with self.torch.inference_mode():
            for step in range(self.output_len - 1):
                logits = self.model(tokens[-1][:, None], self.cache, start=self.prompt_len + step)
                tokens.append(logits.argmax(-1))
        return self.torch.stack(tokens, dim=1)

    def synchronize(self, _result) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
