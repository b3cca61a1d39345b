"""The batched decode step's forward (reviewgpt/generate/batched_step.py): its folded kernels and the
whole step in Triton's interpreter on the CPU, in float16 (numpy has no bfloat16), against the
eager ops and the model's own forward."""

from tests.test_decode_attention import _interpreted


def test_batched_step_computes_the_models_forward(model_dirs):
    """RMSNorm folded into the product (row sums of squares from partials), SiLU x up into a fused
    gate|up's epilogue, the residual add into the product's epilogue, and RMSNorm + q|k|v + RoPE +
    the K/V cache write: as close to float64 as the eager float16 ops (x1.2 + 1e-5; q, k and v
    each), the partial sums of squares add up to the output's, no other cache slot written.
    The tiny model's step: logits within 1e-2 of its own forward's with the same argmax; the engine's decode loop at
    batch 2 runs this forward (a q|k|v+RoPE product, a gate|up one and 2 residual products a layer
    a step, plus lm_head's) and writes the greedy tokens the model's forward writes, and those of
    each prompt decoded alone at batch 1 (a tiny model with 32-dim heads: the q|k|v program takes
    >= 16 dims of each half of a head)."""
    r = _interpreted("batched-step", str(model_dirs / "base"))
    for part in ("norm", "residual", "glu"):
        assert r[part]["ours_err"] <= 1.2 * r[part]["torch_err"] + 1e-5, (part, r[part])
    assert r["residual"]["parts_shape"] == [3, 3] and r["residual"]["squares_rel"] < 1e-5
    assert r["glu"]["shape"] == [3, 96]
    for part, errs in r["rope"].items():
        assert errs["ours_err"] <= 1.2 * errs["torch_err"] + 1e-5, (part, errs)
    assert r["rope_shape"] == [3, 4, 1, 32] and r["rope_other_slots_untouched"]
    assert r["ours_forward"] == "batched_step"
    assert r["plain_forward"].startswith("model (off")
    steps = r["new_tokens"] - 1
    assert r["calls"] == {"rms_norm_linear": (r["layers"] + 1) * steps, "residual_linear": 2 * r["layers"] * steps,
                          "norm_qkv_rope": r["layers"] * steps}
    assert r["logits_rel"] < 1e-2 and r["logits_argmax_equal"], r
    assert r["ours"] == r["plain"] == r["batch1"]  # and each prompt decoded alone (batch 1: the model's forward)
    assert len(r["ours"]) == 2 and all(len(row) == r["new_tokens"] for row in r["ours"])
