"""Layout plumbing of the flash-attn and Ascend backends, checked on CPU.

Neither kernel can run here (no CUDA flash-attn, no NPU), so each test installs a
stand-in module that implements the documented contract of the kernel with per-segment
SDPA: flash-attn's `flash_attn_varlen_func` on [T, H, D] with cu_seqlens, and torch_npu's
`npu_fusion_attention` with layout "TND", cumulative `actual_seq_qlen` and
`sparse_mode=3` + a 2048x2048 mask. The stand-ins check the arguments they are given;
the outputs must equal our CPU backend's. This proves our side of the contract (shapes,
transposes, boundaries, GQA, causal flags), not the kernels themselves.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from sailvl.model.attention import (
    flash_packed_forward,
    npu_packed_forward,
    packed_attention_forward,
    sdpa_packed_forward,
)

CU = torch.tensor([0, 7, 8, 19, 32], dtype=torch.int32)


def segment_attention(q, k, v, ends, causal, scale):
    """Reference over [T, H, D] tensors, segments given by cumulative ends."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    outs, start = [], 0
    for end in ends:
        sl = slice(start, end)
        qs, ks, vs = (x[sl].transpose(0, 1)[None] for x in (q, k, v))
        outs.append(
            F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, scale=scale)[0].transpose(
                0, 1
            )
        )
        start = end
    return torch.cat(outs)


@pytest.fixture
def fake_flash(monkeypatch):
    calls = []

    def varlen(q, k, v, cu_q, cu_k, max_q, max_k, dropout_p=0.0, softmax_scale=None, causal=False):
        assert q.dim() == 3 and torch.equal(cu_q, cu_k) and cu_q.dtype == torch.int32
        assert max_q == max_k == int((cu_q[1:] - cu_q[:-1]).max())
        calls.append((cu_q.tolist(), causal))
        return segment_attention(q, k, v, cu_q[1:].tolist(), causal, softmax_scale)

    monkeypatch.setitem(
        sys.modules, "flash_attn", types.SimpleNamespace(flash_attn_varlen_func=varlen)
    )
    return calls


@pytest.fixture
def fake_npu(monkeypatch):
    calls = []

    def fusion(q, k, v, head_num, input_layout, atten_mask=None, scale=1.0, keep_prob=1.0, **kw):
        assert input_layout == "TND" and head_num == q.shape[1] and keep_prob == 1.0
        ends_q, ends_kv, mode = kw["actual_seq_qlen"], kw["actual_seq_kvlen"], kw["sparse_mode"]
        assert ends_q == ends_kv and all(isinstance(e, int) for e in ends_q)
        if mode == 3:
            assert atten_mask.shape == (2048, 2048) and atten_mask.dtype == torch.bool
            assert bool(atten_mask[0, 1]) and not bool(atten_mask[1, 0])  # True = masked out
        else:
            assert mode == 0 and atten_mask is None
        calls.append((ends_q, mode))
        return (segment_attention(q, k, v, ends_q, mode == 3, scale), None, None)

    monkeypatch.setitem(
        sys.modules, "torch_npu", types.SimpleNamespace(npu_fusion_attention=fusion)
    )
    return calls


def qkv(batch: int = 1, kv_heads: int = 2):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(batch, 4, 32, 8, generator=g)
    return (
        q,
        torch.randn(batch, kv_heads, 32, 8, generator=g),
        torch.randn(batch, kv_heads, 32, 8, generator=g),
    )


@pytest.mark.parametrize("backend", ["flash", "npu"])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_packed_causal_matches_cpu_backend(backend, kv_heads, fake_flash, fake_npu):
    fn = flash_packed_forward if backend == "flash" else npu_packed_forward
    q, k, v = qkv(kv_heads=kv_heads)
    module = torch.nn.Module()
    ref, _ = sdpa_packed_forward(module, q, k, v, None, scaling=0.3, cu_seq_lens_q=CU)
    out, _ = fn(module, q, k, v, None, scaling=0.3, cu_seq_lens_q=CU)
    assert out.shape == (1, 32, 4, 8)
    assert float((out - ref).abs().max()) < 1e-6
    calls = fake_flash if backend == "flash" else fake_npu
    assert calls[-1] == ((CU.tolist(), True) if backend == "flash" else (CU[1:].tolist(), 3))


@pytest.mark.parametrize("backend", ["flash", "npu"])
def test_vision_tower_style_calls_are_bidirectional_per_row(backend, fake_flash, fake_npu):
    """InternViT passes is_causal=False and a batch of tiles: each row is one segment."""
    fn = flash_packed_forward if backend == "flash" else npu_packed_forward
    q, k, v = qkv(batch=3, kv_heads=4)
    module = torch.nn.Module()
    module.is_causal = False
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.5).transpose(1, 2)
    out, _ = fn(module, q, k, v, None, scaling=0.5, is_causal=False)
    assert float((out - ref).abs().max()) < 1e-6
    calls = fake_flash if backend == "flash" else fake_npu
    assert calls[-1] == (([0, 32, 64, 96], False) if backend == "flash" else ([32, 64, 96], 0))


def test_dispatch_on_cpu_uses_segment_sdpa(fake_flash, fake_npu):
    q, k, v = qkv()
    module = torch.nn.Module()
    out, _ = packed_attention_forward(module, q, k, v, None, cu_seq_lens_q=CU)
    ref, _ = sdpa_packed_forward(module, q, k, v, None, cu_seq_lens_q=CU)
    assert torch.equal(out, ref) and fake_flash == [] and fake_npu == []


def test_packed_kwargs_need_one_row():
    q, k, v = qkv(batch=2)
    with pytest.raises(ValueError, match="one packed row"):
        sdpa_packed_forward(torch.nn.Module(), q, k, v, None, cu_seq_lens_q=CU)


def test_a_kv_cache_is_refused_except_single_query_decoding(fake_flash):
    q, k, v = qkv(kv_heads=4)
    module = torch.nn.Module()
    with pytest.raises(ValueError, match="use_cache=False"):
        sdpa_packed_forward(module, q[:, :, :5], k, v, None)
    with pytest.raises(ValueError, match="use_cache=False"):
        flash_packed_forward(module, q[:, :, :1], k, v, None)
    out, _ = sdpa_packed_forward(module, q[:, :, -1:], k, v, None)  # one new token
    ref = F.scaled_dot_product_attention(q[:, :, -1:], k, v).transpose(1, 2)
    assert float((out - ref).abs().max()) < 1e-6
    with pytest.raises(ValueError, match="no attention mask"):
        sdpa_packed_forward(module, q, k, v, torch.ones(1, 1, 32, 32, dtype=torch.bool))
