"""Configuration checks run by the launcher before any worker starts (no torch).

Every check here turns a mistake that would otherwise surface as a traceback in some
worker's log (or a hang) into one clear message that reaches the TrainStage status,
and the job exits with code 2. What cannot be known without tokenising data (a token
budget smaller than one step) is checked by the workers and reported the same way.
"""

from __future__ import annotations

from sailvl.api.plan import PlanInput, check_plan
from sailvl.api.presets import MODEL_LIMITS
from sailvl.runtime.device import DeviceError, check_available
from sailvl.train.config import TrainConfig

CONFIG_FILES = ("config.json",)


class ConfigError(ValueError):
    """A stage configuration that can never run; the message names the field."""


def _has_config(uri: str) -> bool:
    from sailvl.storage import StorageError, open_store

    try:
        return open_store(uri).exists("config.json")
    except (StorageError, OSError, ValueError):
        return False


def plan_input(cfg: TrainConfig) -> PlanInput:
    """The plan of `cfg` at the world size the launcher found (sailvl.api.plan)."""
    return PlanInput(
        global_batch=cfg.global_batch,
        world_size=cfg.world_size,
        budget_kind=cfg.budget_kind,
        budget=cfg.budget,
        max_tiles=cfg.max_tiles,
        use_thumbnail=cfg.use_thumbnail,
        tokens_per_tile=MODEL_LIMITS[cfg.model_preset].tokens_per_tile,
        packing=cfg.packing,
        max_tokens=cfg.max_tokens,
        max_images=cfg.max_images,
        micro_batch=cfg.micro_batch,
    )


def check(cfg: TrainConfig, *, produced: frozenset[str] = frozenset()) -> None:
    """Raise ConfigError naming the first problem of `cfg`.

    `produced`: checkpoint URIs an earlier stage of the same sequence will write
    (`sailvl.train.sequence`); an init naming one of them is not checked yet.
    """
    try:
        check_available(cfg.accelerator)
    except DeviceError as err:
        raise ConfigError(str(err)) from None
    problems = check_plan(plan_input(cfg))  # the same function validation runs
    if problems:
        raise ConfigError("; ".join(f"{field}: {msg}" for field, msg in problems))
    for field, uri in (
        ("model.init", cfg.init_uri),
        ("model.vision", cfg.vision_uri),
        ("model.llm", cfg.llm_uri),
    ):
        if uri and uri.rstrip("/") not in produced and not _has_config(uri):
            raise ConfigError(f"{field}: no Hugging Face checkpoint (config.json) at {uri}")
    if cfg.model_preset != "tiny" and not (cfg.init_uri or cfg.llm_uri):
        raise ConfigError(
            f"model.llm: preset {cfg.model_preset!r} needs model.init or model.llm "
            "(its tokenizer and weights)"
        )
    for i, src in enumerate(cfg.data):
        _check_dataset(f"data[{i}]", src.uri)


def _check_dataset(field: str, uri: str) -> None:
    from sailvl.data.dataset import Dataset
    from sailvl.data.manifest import ManifestError
    from sailvl.storage import StorageError

    try:
        ds = Dataset.open(uri)
    except (ManifestError, StorageError, OSError, ValueError) as err:
        raise ConfigError(f"{field}.uri: cannot read dataset {uri}: {err}") from None
    if len(ds) == 0:
        raise ConfigError(f"{field}.uri: dataset {uri} has no samples")
