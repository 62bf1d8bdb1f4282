"""Packed training == unpacked training on the tiny SAIL-VL model (float32, 1e-5).

The reference runs every sample alone with transformers' own SDPA attention and takes
the token-mean CE over all supervised tokens; the packed run packs the same samples
into rows with the stream accumulator, uses the `sailvl_packed` attention and
`packed_loss` with one global denominator across the rows (gradient accumulation).
"""

from __future__ import annotations

import pytest
import torch

from sailvl.data.packing import IGNORE_INDEX, Config, StreamAccumulator, packed_loss
from sailvl.model.attention import (
    ATTENTION_NAME,
    register_packed_attention,
    sdpa_packed_forward,
    segment_bounds,
    use_packed_attention,
)
from sailvl.model.build import build_model, default_image_token_id, tokens_per_tile
from sailvl.model.presets import get_preset

TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    m = build_model("tiny", dtype=torch.float32, seed=0)
    m.train()  # dropout is 0 in the tiny config; train mode checks nothing depends on eval
    return m


def make_samples(model, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    img = default_image_token_id(get_preset("tiny"))
    tpt = tokens_per_tile(model)
    size = model.config.vision_config.image_size[0]
    specs = [(23, 0), (41, 1), (9, 0), (30, 2), (57, 0), (17, 1)]  # (text tokens, tiles)
    samples = []
    for i, (n, tiles) in enumerate(specs):
        text = torch.randint(0, 256, (n,), generator=g)
        ids = torch.cat([text[:3], torch.full((tiles * tpt,), img), text[3:]])
        labels = ids.clone()
        if i != 2:  # sample 2 is supervised from its first token: checks the boundary
            labels[: 3 + tiles * tpt + 2] = IGNORE_INDEX  # prompt + image unsupervised
        s = {"id": f"s{i}", "input_ids": ids, "labels": labels}
        if tiles:
            s["pixel_values"] = torch.randn(tiles, 3, size, size, generator=g)
        samples.append(s)
    return samples


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def unpacked_reference(model, samples) -> tuple[float, dict[str, torch.Tensor]]:
    model.set_attn_implementation("sdpa")
    total = sum(int((s["labels"][1:] != IGNORE_INDEX).sum()) for s in samples)
    loss_sum = 0.0
    for s in samples:
        kw = {"pixel_values": s["pixel_values"]} if "pixel_values" in s else {}
        logits = model(input_ids=s["input_ids"][None], use_cache=False, **kw).logits
        ce = torch.nn.functional.cross_entropy(
            logits[0, :-1], s["labels"][1:], ignore_index=IGNORE_INDEX, reduction="sum"
        )
        (ce / total).backward()
        loss_sum += float(ce.detach())
    return loss_sum / total, grads(model)


def packed_run(model, samples, max_tokens: int) -> tuple[float, dict[str, torch.Tensor], int]:
    use_packed_attention(model)
    acc = StreamAccumulator(Config(max_tokens=max_tokens, max_tiles=8, close_slack=0))
    batches = list(acc.pack(samples))
    denom = sum(float(b.loss_weight[..., 1:].sum()) for b in batches)  # global, all rows
    loss = 0.0
    for b in batches:
        logits = model(**b.model_inputs()).logits
        part = packed_loss(logits, b.labels, b.loss_weight, denominator=denom)
        part.backward()
        loss += float(part.detach())
    return loss, grads(model), len(batches)


@pytest.mark.parametrize("max_tokens", [512, 160])  # one row; several rows
def test_packed_loss_and_grads_equal_unpacked(model, max_tokens: int):
    samples = make_samples(model)
    ref_loss, ref_grads = unpacked_reference(model, samples)
    loss, got, rows = packed_run(model, samples, max_tokens)
    assert (rows == 1) == (max_tokens == 512)
    assert abs(loss - ref_loss) < TOL
    assert ref_grads.keys() == got.keys()
    vision = [n for n in got if "vision_tower" in n]
    assert vision and all(float(got[n].abs().sum()) > 0 for n in vision)  # images matter
    for name, g in ref_grads.items():
        assert float((got[name] - g).abs().max()) < TOL, name


def test_hf_default_leaks_across_samples_ours_does_not(model):
    """The pitfall: with a cache (use_cache defaults to True) transformers does not
    detect packing from position ids, so attention crosses samples."""
    samples = [s for s in make_samples(model) if "pixel_values" not in s][:3]
    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        alone = torch.cat([model(input_ids=s["input_ids"][None]).logits[0] for s in samples])
        b = next(iter(StreamAccumulator(Config(max_tokens=512, close_slack=0)).pack(samples)))
        leaky = model(input_ids=b.input_ids, position_ids=b.position_ids).logits[0]
        use_packed_attention(model)
        ours = model(**b.model_inputs()).logits[0]
        by_pos = model(input_ids=b.input_ids, position_ids=b.position_ids).logits[0]
    assert float((leaky - alone).abs().max()) > 1e-3
    assert float((ours - alone).abs().max()) < TOL
    assert float((by_pos - alone).abs().max()) < TOL  # position ids alone suffice for us


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_sdpa_packed_matches_block_diagonal_mask(kv_heads: int):
    torch.manual_seed(0)
    cu = torch.tensor([0, 5, 6, 13, 20], dtype=torch.int32)
    q = torch.randn(1, 4, 20, 8)
    k, v = torch.randn(1, kv_heads, 20, 8), torch.randn(1, kv_heads, 20, 8)
    seg = torch.repeat_interleave(torch.arange(4), cu[1:] - cu[:-1])
    causal = torch.tril(torch.ones(20, 20, dtype=torch.bool))
    mask = causal & (seg[:, None] == seg[None, :])
    rep = 4 // kv_heads
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), attn_mask=mask
    ).transpose(1, 2)
    module = torch.nn.Module()
    out, _ = sdpa_packed_forward(module, q, k, v, None, cu_seq_lens_q=cu)
    assert out.shape == (1, 20, 4, 8)
    assert float((out - ref).abs().max()) < 1e-6
    pos = torch.cat([torch.arange(int(n)) for n in cu[1:] - cu[:-1]])[None]
    out2, _ = sdpa_packed_forward(module, q, k, v, None, position_ids=pos)
    assert torch.equal(out, out2)
    bidir, _ = sdpa_packed_forward(module, q, k, v, None, is_causal=False, cu_seq_lens_q=cu)
    assert float((bidir - out).abs().max()) > 1e-3  # non-causal callers are not segmented


def test_segment_bounds_and_registration():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1]])
    assert segment_bounds(8, position_ids=pos).tolist() == [0, 3, 5, 6, 8]
    assert segment_bounds(8).tolist() == [0, 8]
    with pytest.raises(ValueError, match="cu_seqlens"):
        segment_bounds(8, cu_seq_lens=torch.tensor([0, 5]))
    from transformers import AttentionInterface

    names = register_packed_attention()
    assert ATTENTION_NAME in names and all(n in AttentionInterface._global_mapping for n in names)
    with pytest.raises(ValueError, match="name"):
        use_packed_attention(object(), name="nope")
