"""Choosing the next token on the device, inside the compiled decode step (one graph replay a token).

The engine's processors (suppression, temperature, top-p) are Python objects built per generation
with their settings as Python floats; traced as they are, every new setting (the app's slider) would
recompile the step. `GraphSampler` keeps ONE instance of each, built once per decoder, whose
settings are 0-d tensors that `set()` overwrites in place: the processors' own code runs in the
graph (one owner of their semantics), the settings change without recompiling.

Sampling is the exponential race, argmax(p / E) with E ~ Exponential(1) i.i.d. per token, which
picks token i with probability p_i / sum(p) (gpt-fast samples this way), computed as its log form
argmax(warped scores + G), G = -log(E) (Gumbel noise): no softmax, no multinomial, no host sync.
The noise is a counter-based hash of (seed, step, row, token), not the CUDA generator: the same
seed gives the same review whatever the graph replays (a generator's state inside captured CUDA
graphs did not reproduce on the H100). The seed is drawn from torch's CPU generator at each
generation, so `torch.manual_seed` (GenerationConfig.seed) fixes it. Greedy is argmax of the
suppressed scores, exactly as the eager loop. Top-p (`top_p_split`): transformers' TopPLogitsWarper
runs its softmax in one thread block a row (32 us for 128k logits on an H100); top_p_split computes
the warper's rule without it: it sorts the scores as the warper does, takes exp(sorted - max) and its
cumsum (one opaque op, `reviewgpt::sorted_mass`: inductor's split scan for the cumsum failed to
compile at batch 8; several rows take the two-level `chunked_cumsum`), and removes, in ascending
order, the tokens whose cumulative weight is <= (1 - p) x the total (the cumsum's last entry). That
is the warper's comparison multiplied through by the softmax's normaliser; on random 128k rows it
agrees with a float64 warper at least as often as the float32 warper does (tests/test_decode_graph.py).
The removed tokens are a prefix of the sorted order, so one compare against the first kept (value,
index) marks them.

The suppression processor's MarkerProbe records go to `StepRecorder`, fixed buffers written at a
device-side cursor; `StepRecorder.hand_to(probe)` copies the steps a generation used into the
caller's probe afterwards (same numbers as the eager path records).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from reviewgpt.generate.marker_probe import MarkerProbe, marker_mass
from reviewgpt.generate.suppression import SequenceSuppressionProcessor, suppression_penalty

WINDOW = SequenceSuppressionProcessor.lookback  # tokens of look-back the graph keeps per row
_M32 = 0xFFFFFFFF


def chunked_cumsum(x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """cumsum over the last dim of (b, n) in two levels: within chunks, then the chunks' totals.
    Same values as cumsum up to float rounding (fewer additions in sequence). On the H100, for 128,256
    float32 a row (an H100 micro-benchmark, in git history): 8 rows 161 -> 20.5 us; 1 row 5.2 -> 17.5 us, so one row
    keeps the one-pass scan."""
    b, n = x.shape
    if b == 1:
        return x.cumsum(-1)
    k = -(-n // chunk)
    if k * chunk != n:
        x = torch.nn.functional.pad(x, (0, k * chunk - n))
    inner = x.view(b, k, chunk).cumsum(-1)
    # the sum of all earlier chunks, an exclusive scan (not cumsum - total: rounding could then make
    # a chunk start below where the one before ended)
    before = torch.nn.functional.pad(inner[:, :-1, -1].cumsum(-1), (1, 0))
    return (inner + before.unsqueeze(-1)).view(b, k * chunk)[:, :n]


def sorted_mass_ops(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scores sorted ascending (stable: ties in index order, as the warper's sort leaves them), their
    indices, and the cumulative exp(sorted - max)."""
    ascending, order = torch.sort(scores, descending=False, stable=True, dim=-1)
    mass = chunked_cumsum(torch.exp(ascending - ascending[..., -1:]))
    return ascending, order, mass.contiguous()  # as the fake says (a padded chunked_cumsum is not)


@torch.library.custom_op("reviewgpt::sorted_mass", mutates_args=())
def sorted_mass(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`sorted_mass_ops` as one opaque op for the compiled step (inductor's split scan for the cumsum
    failed to compile at batch 8)."""
    return sorted_mass_ops(scores)


@sorted_mass.register_fake
def _(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.empty_like(scores), torch.empty_like(scores, dtype=torch.long), torch.empty_like(scores)


def top_p_split(scores: torch.Tensor, p: torch.Tensor, opaque: bool = True) -> torch.Tensor:
    """TopPLogitsWarper(p, min_tokens_to_keep=1)'s output without a softmax kernel (module docstring).
    The removed tokens are a prefix of the ascending order (up to the first whose cumulative mass
    passes (1 - p) x the total; never the largest): those before the first kept one, (value, index)
    in that order, so no scatter of the sorted mask back to the vocabulary is needed. `opaque=False`
    traces the sort and scan as plain ops (the ahead-of-time step: a Python custom op cannot run
    inside an AOTInductor package)."""
    ascending, order, mass = (torch.ops.reviewgpt.sorted_mass if opaque else sorted_mass_ops)(scores)
    over = mass > (1 - p) * mass[..., -1:]  # False everywhere (p = 0, or 1 - p rounding to 1): keep the largest alone
    # the first over (wide_argmax: one row's 128k reduced by many blocks; argmax over a row, one block: 93 us at 8 rows)
    first_kept = torch.where(over[..., -1:], wide_argmax(over.float()), scores.shape[-1] - 1)
    value, index = ascending.gather(-1, first_kept), order.gather(-1, first_kept)
    token = torch.arange(scores.shape[-1], device=scores.device)
    return scores.masked_fill((scores < value) | ((scores == value) & (token < index)), -math.inf)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply) on int64 holding values < 2^32 (products stay < 2^63)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x6D2B79F5) & _M32
    return x ^ (x >> 16)


def gumbel_noise(seed: torch.Tensor, step: torch.Tensor, rows: int, vocab: int) -> torch.Tensor:
    """(rows, vocab) float32 Gumbel noise, a pure function of (seed, step, row, token)."""
    device = seed.device
    key = _mix32(_mix32(seed.view(1, 1) ^ step.view(1, 1)) ^ torch.arange(rows, device=device).view(-1, 1))
    # A view that needs storage makes inductor write the per-row key to a buffer. Inlined into the per-token
    # hash, its expression is traced as a tree (each xorshift reads its input twice: 2^9 copies), and
    # lowering the decode step took 26 s more (tests/test_aot_step.py's CPU package with the precompiled
    # header: 56 -> 30 s).
    key = key.as_strided(key.shape, key.stride())
    bits = _mix32(key ^ torch.arange(vocab, device=device).view(1, -1))
    u = ((bits >> 9).float() + 0.5) * (1.0 / (1 << 23))  # uniform in (0, 1); 23 bits keep 1 - u exact in float32
    return -torch.log(-torch.log(u))


def wide_argmax(x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """argmax over the last dim of (b, V), first index on ties like torch.argmax, in two stages so that
    a 128k-wide row is reduced by many blocks rather than one. Returns (b, 1)."""
    b, v = x.shape
    n = -(-v // chunk)
    if n * chunk != v:
        x = torch.nn.functional.pad(x, (0, n * chunk - v), value=-math.inf)
    best, at = x.view(b, n, chunk).max(dim=-1)
    which = best.argmax(dim=-1, keepdim=True)
    return which * chunk + at.gather(1, which)


class StepRecorder:
    """MarkerProbe-compatible recorder into fixed device buffers (steps x batch), cursor on the device."""

    def __init__(self, steps: int, batch: int, device: torch.device) -> None:
        self.last = torch.zeros(steps, batch, dtype=torch.long, device=device)
        self.before = torch.zeros(steps, batch, dtype=torch.float32, device=device)
        self.after = torch.zeros(steps, batch, dtype=torch.float32, device=device)
        self.cursor = torch.zeros(1, dtype=torch.long, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.last, self.before, self.after, self.cursor]

    def record(self, last_token: torch.Tensor, p_before: torch.Tensor, p_after: torch.Tensor) -> None:
        self.last.index_copy_(0, self.cursor, last_token.view(1, -1))
        self.before.index_copy_(0, self.cursor, p_before.float().view(1, -1))
        self.after.index_copy_(0, self.cursor, p_after.float().view(1, -1))
        self.cursor.add_(1)

    def hand_to(self, probe: MarkerProbe, steps: int) -> None:
        """Give `probe` the first `steps` records, one per step, as the eager loop would have."""
        last, before, after = (t[:steps].clone() for t in (self.last, self.before, self.after))
        for k in range(steps):
            probe.record(last[k], before[k], after[k])


class GraphSampler:
    """Suppression -> temperature -> top-p -> sample (or greedy), with tensor settings."""

    def __init__(self, tokenizer: Any, batch: int, steps: int, device: torch.device) -> None:
        self.device = device
        self.recorder = StepRecorder(steps, batch, device)
        self.penalty = torch.zeros((), device=device)  # log(1 - s); -inf at s = 1
        self.temperature = torch.ones((), device=device)
        self.top_p = torch.ones((), device=device)
        self.greedy = torch.zeros((), dtype=torch.bool, device=device)
        self.seed = torch.zeros((), dtype=torch.long, device=device)
        self.suppress = SequenceSuppressionProcessor(tokenizer, 0.0, probe=self.recorder)
        self.suppress._on(device)  # its id tensors, built once outside the graph
        self.suppress.penalty = self.penalty
        self.opaque_sort = True  # top_p_split's sort and scan as one custom op (False: plain ops, aot_step.py)
        self.warp_temperature = TemperatureLogitsWarper(1.0)
        self.warp_temperature.temperature = self.temperature

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor the graph reads or writes that lives across steps (static addresses)."""
        return [self.penalty, self.temperature, self.top_p, self.greedy, self.seed, *self.recorder.tensors(),
                *self.suppress._on(self.device).values()]

    def accepts(self, processors: Sequence[Any]) -> bool:
        """True when every processor is one this sampler runs (the engine's own, default options)."""
        for p in processors:
            if isinstance(p, SequenceSuppressionProcessor):
                if p._sets is not self.suppress._sets:  # another tokenizer or marker
                    return False
            elif isinstance(p, TopPLogitsWarper):
                if p.min_tokens_to_keep != 1 or p.filter_value != -math.inf:
                    return False
            elif not isinstance(p, TemperatureLogitsWarper):
                return False
        return True

    def set(self, processors: Sequence[Any], sample: bool) -> MarkerProbe | None:
        """Take the settings of `processors` (as built by the engine); returns their probe, if any.
        Resets the recorder."""
        strength, temperature, top_p, probe = 0.0, 1.0, 1.0, None
        for p in processors:
            if isinstance(p, SequenceSuppressionProcessor):
                strength, probe = p.strength, p.probe
            elif isinstance(p, TemperatureLogitsWarper):
                temperature = float(p.temperature)
            elif isinstance(p, TopPLogitsWarper):
                top_p = float(p.top_p)
        self.penalty.fill_(suppression_penalty(strength))
        self.temperature.fill_(temperature)
        self.top_p.fill_(top_p)
        self.greedy.fill_(not sample)
        self.seed.fill_(int(torch.randint(0, 2**32, (1,)).item()))  # torch.manual_seed fixes it
        self.recorder.cursor.zero_()
        return probe

    def __call__(self, window: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """window (b, WINDOW) trailing tokens; logits (b, vocab) float32 -> next tokens (b, 1)."""
        raw = logits
        scores = self.suppress._penalise(window, logits, self.suppress._on(logits.device))
        start = self.suppress._on(logits.device)["start"]
        step = self.recorder.cursor.clone()  # this pick's index in the generation (the noise's counter)
        self.recorder.record(window[:, -1], marker_mass(raw, start), marker_mass(scores, start))
        scaled = self.warp_temperature(window, scores)
        warped = top_p_split(scaled, self.top_p, self.opaque_sort)
        # one argmax for both modes: greedy is argmax of the suppressed scores, sampling of warped + noise
        return wide_argmax(torch.where(self.greedy, scores, warped + gumbel_noise(self.seed, step, *warped.shape)))
