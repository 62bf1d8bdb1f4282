"""transformers backend: SAIL-VL / InternVL generation with `model.generate`.

Runs anywhere torch runs (CPU in the tests with the tiny preset, CUDA, or NPU through
torch_npu). The model and tokenizer come from `sailvl.model.loader.load_pretrained`
(a Hugging Face folder or an object-store URI).

`prepare` (prefetch thread) does all CPU work per sample: InternVL dynamic tiling,
normalisation to a (tiles, 3, T, T) tensor, and the ChatML prompt with
`<img>` + `<IMG_CONTEXT>` x (tokens per tile x tiles) + `</img>` tokenised. `generate`
(main thread) left-pads a batch, concatenates the tiles in sample order (the model
scatters tile features into the `<IMG_CONTEXT>` positions in that order), runs one
`generate` call and decodes only the new tokens, stopping at `<|im_end|>`.

Tiling follows InternVL's `dynamic_preprocess`: candidate grids (i, j) with
1 <= i*j <= max_dynamic_patch; the grid whose aspect ratio is closest to the image's
wins (float64 ratios; on a tie the later grid wins when the image area exceeds half of
the grid's pixel area); the image is resized to (T*i, T*j) and cut row-major, plus a
T x T thumbnail when there is more than one tile and `use_thumbnail` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sailvl.caption.config import EngineConfig, GenerationConfig

MEAN = (0.485, 0.456, 0.406)  # ImageNet normalisation, as InternVL
STD = (0.229, 0.224, 0.225)


def grid_for(width: int, height: int, max_num: int, tile: int) -> tuple[int, int]:
    """The (columns, rows) grid InternVL's dynamic_preprocess picks."""
    ratios = sorted(
        {
            (i, j)
            for n in range(1, max_num + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if 1 <= i * j <= max_num
        },
        key=lambda r: r[0] * r[1],
    )
    aspect = float(width) / float(height)
    best, best_diff = (1, 1), float("inf")
    area = width * height
    for i, j in ratios:
        diff = abs(aspect - float(i) / float(j))
        if diff < best_diff:
            best, best_diff = (i, j), diff
        elif diff == best_diff and area > 0.5 * tile * tile * i * j:
            best = (i, j)
    return best


def tile_image(image: Any, max_num: int, tile: int, use_thumbnail: bool) -> list[Any]:
    cols, rows = grid_for(image.width, image.height, max_num, tile)
    resized = image.resize((tile * cols, tile * rows))
    tiles = [
        resized.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile))
        for r in range(rows)
        for c in range(cols)
    ]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((tile, tile)))
    return tiles


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_uri: str, engine: EngineConfig, gen: GenerationConfig) -> None:
        import torch

        from sailvl.model.build import tile_size, tokens_per_tile
        from sailvl.model.loader import load_pretrained
        from sailvl.model.tokenizer import IM_END, IMG_CONTEXT, IMG_END, IMG_START

        device = engine.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "npu":
            import torch_npu  # noqa: F401  (registers the npu device)
        dtype = engine.dtype
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        model, tok = load_pretrained(model_uri, dtype=dtype)
        self.model = model.to(device).eval()
        self.tok = tok
        self.device = device
        self.engine, self.gen = engine, gen
        self.tile = tile_size(model)
        self.per_tile = tokens_per_tile(model)
        self.specials = (IMG_START, IMG_CONTEXT, IMG_END)
        self.eos_id = tok.convert_tokens_to_ids(IM_END)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_id
        self.dtype = next(model.parameters()).dtype
        self._torch = torch

    def prepare(self, prompt: str, image: Any, raw: bytes) -> Any:
        torch = self._torch
        tiles = tile_image(
            image, self.engine.max_dynamic_patch, self.tile, self.engine.use_thumbnail
        )
        mean = torch.tensor(MEAN).view(3, 1, 1)
        std = torch.tensor(STD).view(3, 1, 1)
        pixels = torch.stack(
            [
                (
                    torch.frombuffer(bytearray(t.tobytes()), dtype=torch.uint8)
                    .view(self.tile, self.tile, 3)
                    .permute(2, 0, 1)
                    .float()
                    / 255.0
                    - mean
                )
                / std
                for t in tiles
            ]
        )
        start, ctx, end = self.specials
        image_text = start + ctx * (self.per_tile * len(tiles)) + end
        text = f"<|im_start|>user\n{image_text}\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return ids, pixels

    def generate(self, batch: Sequence[Any]) -> list[str]:
        torch = self._torch
        longest = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, (ids, _) in enumerate(batch):  # left padding: generation appends right
            input_ids[row, longest - len(ids) :] = torch.tensor(ids)
            mask[row, longest - len(ids) :] = 1
        pixels = torch.cat([p for _, p in batch]).to(self.device, self.dtype)
        g = self.gen
        kwargs: dict[str, Any] = {
            "max_new_tokens": g.max_new_tokens,
            "repetition_penalty": g.repetition_penalty,
            "eos_token_id": self.eos_id,
            "pad_token_id": self.pad_id,
        }
        if g.temperature > 0:
            torch.manual_seed(g.seed)
            kwargs.update(
                do_sample=True, temperature=g.temperature, top_p=g.top_p, top_k=g.top_k or None
            )
        else:
            kwargs.update(do_sample=False)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                pixel_values=pixels,
                **kwargs,
            )
        new = out[:, longest:].tolist()
        return [self.tok.decode(seq, skip_special_tokens=True).strip() for seq in new]

    def close(self) -> None:
        self.model = None
