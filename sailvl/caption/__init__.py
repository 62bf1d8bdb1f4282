"""The recaption worker (the pod side of a CaptionJob) and its backends.

Importing this package is cheap: it pulls in only the config dataclasses. The worker
(`sailvl.caption.worker`), the shard I/O (pyarrow) and the backends (torch,
transformers, lmdeploy) are imported where they are used.
"""

from sailvl.caption.config import (
    CaptionConfig,
    EngineConfig,
    FilterConfig,
    GenerationConfig,
    PromptConfig,
)

__all__ = [
    "CaptionConfig",
    "EngineConfig",
    "FilterConfig",
    "GenerationConfig",
    "PromptConfig",
]
