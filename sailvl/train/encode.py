"""Dataset row -> model sample: tiles, pixel values, chat-template ids and labels.

This runs as the streaming reader's `transform`, in its decode threads. A row becomes

    {"id", "input_ids", "labels", "pixel_values" [tiles, 3, tile, tile], "num_tiles",
     "tokens"}

Text: pretraining stages (`caption` mode) train captioning, one user turn with the
image and a fixed prompt, the caption as the answer; SFT stages (`conversation` mode)
use the row's conversations, falling back to the caption when a row has none. Images
are tiled with InternVL's dynamic preprocessing (`sailvl.data.tiling`) and normalised
with the ImageNet mean and std InternViT was trained with. A row that cannot be encoded
raises: the reader counts it as a skipped sample and the stream stays aligned.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

from sailvl.train.config import CAPTION

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """How rows become samples."""

    text_mode: str = CAPTION  # caption | conversation
    tile_size: int = 64  # tile edge in pixels (model preset)
    tokens_per_tile: int = 16  # <IMG_CONTEXT> per tile (model preset)
    max_tiles: int = 6  # largest grid
    use_thumbnail: bool = True  # extra whole-image tile for multi-tile grids
    dtype: str = "float32"  # pixel_values dtype (the model's compute dtype)

    def __post_init__(self) -> None:
        if self.text_mode not in ("caption", "conversation"):
            raise ValueError(f"text_mode: {self.text_mode!r} not in caption|conversation")
        if self.tile_size < 1 or self.tokens_per_tile < 1 or self.max_tiles < 1:
            raise ValueError("tile_size / tokens_per_tile / max_tiles: must be >= 1")


def pixel_values(tiles: list[Any], dtype: Any) -> Any:
    """[n, 3, H, W] normalised tensor from PIL RGB tiles."""
    import numpy as np
    import torch

    arr = np.stack([np.asarray(t, dtype=np.float32) for t in tiles]) / 255.0
    arr = (arr - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(dtype)


class Encoder:
    """Callable transform for `StreamingReader`, called from its decode threads.

    Image decoding and tiling run in parallel; tokenisation holds a lock: a Hugging Face
    fast tokenizer is one Rust object that raises "Already borrowed" when two threads
    use it at once, and the reader would count those samples as skipped.
    """

    def __init__(self, tokenizer: Any, config: EncoderConfig) -> None:
        from sailvl.data.template import TemplateConfig
        from sailvl.data.tiling import TilingConfig

        self.tokenizer = tokenizer
        self.config = config
        self.tiling = TilingConfig(
            tile_size=config.tile_size,
            max_tiles=config.max_tiles,
            use_thumbnail=config.use_thumbnail,
        )
        self.template = TemplateConfig(tokens_per_tile=config.tokens_per_tile)
        self.lock = threading.Lock()  # also held by whoever saves the tokenizer

    def conversation(self, row: dict[str, Any]) -> list[dict[str, str]]:
        from sailvl.data.template import caption_conversation

        turns = row.get("conversations") or []
        if self.config.text_mode == CAPTION or not turns:
            if not row.get("caption"):
                raise ValueError(f"{row.get('id')}: no caption and no conversations")
            return caption_conversation(row["caption"])
        return list(turns)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        import torch
        from PIL import Image

        from sailvl.data.template import encode_conversation
        from sailvl.data.tiling import tile_image

        tiles: list[Any] = []
        per_image = []
        for raw in row.get("images") or []:
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                cut = tile_image(img, self.tiling)
            tiles.extend(cut)
            per_image.append(len(cut))
        with self.lock:
            enc = encode_conversation(
                self.tokenizer, self.conversation(row), per_image, self.template
            )
        dtype = getattr(torch, self.config.dtype)
        return {
            "id": row["id"],
            "input_ids": torch.tensor(enc.input_ids, dtype=torch.long),
            "labels": torch.tensor(enc.labels, dtype=torch.long),
            "pixel_values": pixel_values(tiles, dtype) if tiles else None,
            "num_tiles": len(tiles),
            "tokens": len(enc.input_ids),
        }
