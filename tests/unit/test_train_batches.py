"""Step batching: packing keeps every sample, equalize adds zero-weight rows, the
global-denominator loss is independent of how samples fall into micro-batches, and
the projector-only pitfall term keeps the projector in the graph."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from sailvl.data.packing import Config, packed_loss
from sailvl.train import batches as B


def sample(i: int, n: int) -> dict:
    g = torch.Generator().manual_seed(i)
    ids = torch.randint(0, 200, (n,), generator=g)
    labels = ids.clone()
    labels[: n // 3] = -100
    return {"id": f"s{i}", "input_ids": ids, "labels": labels}


SAMPLES = [sample(i, n) for i, n in enumerate([40, 90, 17, 60, 120, 33, 75, 8])]
CFG = Config(max_tokens=160, max_tiles=4, close_slack=4, loss_weighting="token")


def test_pack_step_keeps_every_sample_once() -> None:
    rows = B.pack_step(SAMPLES, CFG)
    ids = [i for r in rows for i in r.sample_ids]
    assert sorted(ids) == sorted(s["id"] for s in SAMPLES) and len(ids) == len(set(ids))
    assert all(r.input_ids.shape[1] <= CFG.max_tokens for r in rows)


def test_equalize_pads_with_zero_weight_copies() -> None:
    rows = B.pack_step(SAMPLES, CFG)
    out = B.equalize(rows, len(rows) + 2)
    assert len(out) == len(rows) + 2
    assert all(float(r.loss_weight.sum()) == 0 and r.sample_ids == [] for r in out[-2:])
    with pytest.raises(ValueError):
        B.equalize(rows, len(rows) - 1)


def test_pad_step_right_pads_with_ignored_labels() -> None:
    rows = B.pad_step(SAMPLES[:3], CFG, micro_batch=2)
    assert [r.input_ids.shape[0] for r in rows] == [2, 1]
    first = rows[0]
    assert first.input_ids.shape[1] == 90 and first.num_real_tokens == 130
    assert first.num_pad_tokens == 50 and bool((first.labels[0, 40:] == -100).all())


def test_loss_with_global_denominator_is_split_invariant() -> None:
    """sum over micro-batches of packed_loss(denominator=W) == one-row loss."""
    torch.manual_seed(0)
    vocab = 200
    table = torch.randn(vocab, vocab)

    def loss_of(rows: list) -> torch.Tensor:
        w = sum(float(r.loss_weight[..., 1:].sum()) for r in rows)
        return sum(packed_loss(table[r.input_ids], r.labels, r.loss_weight, w) for r in rows)

    small = B.pack_step(SAMPLES, CFG)
    big = B.pack_step(SAMPLES, Config(max_tokens=1024, max_tiles=4, loss_weighting="token"))
    assert len(small) > 1 and len(big) == 1
    padded = B.equalize(small, len(small) + 1)
    assert torch.allclose(loss_of(small), loss_of(big), atol=1e-5)
    assert torch.allclose(loss_of(padded), loss_of(big), atol=1e-5)


def test_image_term_keeps_projector_in_graph_with_zero_grad() -> None:
    from sailvl.model.build import build_model
    from sailvl.model.freeze import apply_freeze
    from sailvl.train.loop import _image_term

    model = build_model("tiny", seed=0)
    apply_freeze(model, ["projector"])
    ids = torch.randint(0, 200, (1, 12))
    logits = model(input_ids=ids, use_cache=False).logits
    text_loss = logits.float().mean() * 0  # a text-only row: projector not in the graph
    assert not text_loss.requires_grad
    loss = text_loss + _image_term(SimpleNamespace(module=model), torch.float32, "cpu")
    assert loss.requires_grad
    loss.backward()
    grads = [p.grad for p in model.model.multi_modal_projector.parameters()]
    assert all(g is not None and float(g.abs().sum()) == 0.0 for g in grads)
