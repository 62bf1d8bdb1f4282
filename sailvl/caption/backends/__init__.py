"""Caption backends: the protocol the worker drives, and the registry by name.

A backend turns (prompt, image) pairs into caption strings. The worker calls
`prepare` in its prefetch thread (decode-side CPU work: image conversion, tiling,
normalisation) and `generate` in the main thread on whole batches, so whatever a
backend can do ahead of the accelerator belongs in `prepare`.

This module is the whole surface; backends are imported lazily by `make_backend` so
that choosing `transformers` never imports lmdeploy and vice versa.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sailvl.caption.config import CaptionConfig


class CaptionBackend(Protocol):
    """What the worker needs from an inference engine."""

    name: str

    def prepare(self, prompt: str, image: Any, raw: bytes) -> Any:
        """Per-sample preprocessing (runs off the generation thread). `image` is the
        decoded PIL image in RGB, `raw` its original encoded bytes; the return value is
        handed back to `generate` unchanged."""
        ...

    def generate(self, batch: Sequence[Any]) -> list[str]:
        """Caption a batch of prepared samples; one string per sample, in order."""
        ...

    def close(self) -> None:
        """Release the engine (device memory, worker processes)."""
        ...


def make_backend(cfg: CaptionConfig) -> CaptionBackend:
    """Instantiate the configured backend on `cfg.model_uri` (a folder or a URI)."""
    if cfg.backend == "transformers":
        from sailvl.caption.backends.hf import TransformersBackend

        return TransformersBackend(cfg.model_uri, cfg.engine, cfg.generation)
    if cfg.backend == "lmdeploy":
        from sailvl.caption.backends.lmdeploy import LMDeployBackend
        from sailvl.model.checkpoint import download_to_temp, is_local, local_path

        # LMDeploy reads local folders only; an object-store model is copied once.
        uri = cfg.model_uri
        path = local_path(uri) if is_local(uri) else download_to_temp(uri)
        return LMDeployBackend(path, cfg.engine, cfg.generation)
    raise ValueError(f"backend: unknown backend {cfg.backend!r}")
