"""One matrix product for q|k|v and one for gate|up per layer (the GPU decode step is weight-read
bound: one GEMV of 6,144 rows instead of three, one of 28,672 instead of two; fewer launches and
fewer split-K reductions).

`fuse_projections(model)` concatenates each group's base weights once, into one linear of the same
kind (nn.Linear, or bitsandbytes' Linear4bit, re-quantized from the dequantized concatenation with
bitsandbytes' own quantizer: NF4 blocks of 64 never straddle two projections, so the 4-bit codes
come out identical to the originals', which `FusionReport.codes_identical` checks; the per-block
scales are the originals' own, un-nested, so the fused layer uses exactly their weights). The original
base linears are replaced by `_Rows` stand-ins holding no weights, so the memory is not doubled.

The library's module code runs unchanged: a forward pre-hook on the attention (MLP) module computes
the fused product of its input and hands each stand-in its rows; the attention's own forward then
calls q_proj, k_proj, v_proj as always and each returns its rows. A peft LoRA wrapper around a
projection keeps working as it is: its base layer is the stand-in, its LoRA term is added by peft.
A stand-in called without rows waiting (not through its module's forward) computes them itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

GROUPS = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


@dataclass
class FusionReport:
    groups: int = 0  # fused groups (2 per decoder layer for Llama)
    kinds: dict[str, int] = field(default_factory=dict)  # "Linear" / "Linear4bit" -> groups
    codes_identical: bool | None = None  # NF4: re-quantized codes == the originals' (None: no NF4)
    skipped: list[str] = field(default_factory=list)  # modules left alone, and why


class _Rows(nn.Module):
    """Stands in for one projection's base linear: rows [start, end) of its group's fused output."""

    def __init__(self, fused: nn.Module, start: int, end: int, in_features: int) -> None:
        super().__init__()
        self._fused = (fused,)  # a reference, not a submodule (the parent module owns it)
        self.start, self.end = start, end
        self.in_features, self.out_features = in_features, end - start
        self.rows: torch.Tensor | None = None  # set by the pre-hook, taken by the next call

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.rows
        if out is None:
            return self._fused[0](x)[..., self.start:self.end]
        self.rows = None
        return out

    def extra_repr(self) -> str:
        return f"rows {self.start}:{self.end} of the fused projection"


def _base(module: nn.Module) -> nn.Module:
    return module.base_layer if hasattr(module, "base_layer") else module  # peft LoRA wrapper or plain


def _set_base(parent: nn.Module, name: str, new: nn.Module) -> None:
    module = getattr(parent, name)
    if hasattr(module, "base_layer"):
        module.base_layer = new
    else:
        setattr(parent, name, new)


def _linear4bit_class() -> type | None:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return None
    return bnb.nn.Linear4bit


def _fuse_linears(bases: list[nn.Module], report: FusionReport) -> nn.Module | None:
    first = bases[0]
    if any(b.in_features != first.in_features for b in bases):
        return None
    if all(type(b) is nn.Linear for b in bases):
        w = first.weight
        bias = any(b.bias is not None for b in bases)
        fused = nn.Linear(first.in_features, sum(b.out_features for b in bases), bias=bias, device=w.device,
                          dtype=w.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([b.weight for b in bases]))
            if bias:
                fused.bias.copy_(torch.cat([b.bias if b.bias is not None else torch.zeros(b.out_features, device=w.device,
                                                                                          dtype=w.dtype) for b in bases]))
        fused.requires_grad_(False)
        return fused
    linear4bit = _linear4bit_class()
    if linear4bit is not None and all(type(b) is linear4bit and b.bias is None for b in bases):
        return _fuse_4bit(bases, report)
    return None


def _absmax(state: Any) -> torch.Tensor:
    """A QuantState's per-block absmax as float32 (undoing the nested 8-bit quantization, if any)."""
    import bitsandbytes.functional as bf

    if state.nested:
        return bf.dequantize_blockwise(state.absmax, state.state2) + state.offset
    return state.absmax.float()


def _fuse_4bit(bases: list[nn.Module], report: FusionReport) -> nn.Module | None:
    """Codes from bitsandbytes' quantizer on the dequantized concatenation (checked equal to the
    originals'); the per-block scales are the originals' own, exactly (not re-quantized: nesting
    them again over the concatenation would shift every weight by up to one 8-bit step of its
    scale), so the fused layer computes with the very weights the three did."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bf

    states = [b.weight.quant_state for b in bases]
    qs = states[0]
    if any(s.quant_type != qs.quant_type or s.blocksize != qs.blocksize for s in states):
        return None
    if bases[0].in_features % qs.blocksize:  # a block would straddle two rows: codes could change
        return None
    w = bases[0].weight
    dense = torch.cat([bf.dequantize_4bit(b.weight.data, b.weight.quant_state) for b in bases])
    fused = bnb.nn.Linear4bit(bases[0].in_features, dense.shape[0], bias=False, compute_dtype=bases[0].compute_dtype,
                              compress_statistics=False, quant_type=qs.quant_type, quant_storage=w.quant_storage,
                              device=torch.device("meta"))
    fused.weight = bnb.nn.Params4bit(dense, requires_grad=False, quant_type=qs.quant_type, blocksize=qs.blocksize,
                                     compress_statistics=False, quant_storage=w.quant_storage, module=fused)
    fused.to(w.device)  # bitsandbytes quantizes on the move to the GPU (its own quantize_4bit)
    del dense
    same = torch.equal(fused.weight.data.view(-1), torch.cat([b.weight.data.view(-1) for b in bases]))
    report.codes_identical = same if report.codes_identical is None else report.codes_identical and same
    scales = torch.cat([_absmax(s) for s in states])
    fused.weight.quant_state.absmax = scales.to(fused.weight.quant_state.absmax.dtype)
    return fused


def _pre_hook(fused_name: str, part_names: tuple[str, ...]):
    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))
        out = getattr(module, fused_name)(x)
        for name in part_names:
            rows = _base(getattr(module, name))
            rows.rows = out[..., rows.start:rows.end]
    return hook


def fuse_projections(model: nn.Module) -> FusionReport:
    """Fuse q|k|v and gate|up in every module that has them (nn.Linear or NF4 Linear4bit bases,
    optionally inside peft LoRA wrappers). Inference only: the fused weights do not train."""
    report = FusionReport()
    for module in list(model.modules()):
        for fused_name, parts in GROUPS.items():
            if not all(hasattr(module, p) for p in parts) or hasattr(module, fused_name):
                continue
            bases = [_base(getattr(module, p)) for p in parts]
            fused = _fuse_linears(bases, report)
            if fused is None:
                report.skipped.append(f"{type(module).__name__}.{fused_name}: {sorted({type(b).__name__ for b in bases})}")
                continue
            setattr(module, fused_name, fused)
            start = 0
            for name, base in zip(parts, bases):
                _set_base(module, name, _Rows(fused, start, start + base.out_features, base.in_features))
                start += base.out_features
            del bases
            module.register_forward_pre_hook(_pre_hook(fused_name, parts), with_kwargs=True)
            report.groups += 1
            kind = type(fused).__name__
            report.kinds[kind] = report.kinds.get(kind, 0) + 1
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return report
