"""bench/generate.py runs (--quick) and ends with its JSON line (no speed is asserted)."""

from __future__ import annotations

from bench_run import run_bench


def test_generate_quick() -> None:
    # The bundled model for both locales, so the run does not depend on what is installed.
    env = {"ADGEN_BASE_MODEL_ZH": "smollm2-135m-instruct"}
    out = run_bench("generate.py", "--quick", "--seed", "3", timeout_s=900, env=env).result
    assert out["bench"] == "generate" and out["seed"] == 3
    assert [r["locale"] for r in out["results"]] == ["en", "zh"]
    for r in out["results"]:
        assert r["base_model"] == "smollm2-135m-instruct"
        assert r["variants_per_s"] >= 0 and r["batch_latency_s"] > 0
        assert r["candidates"] > 0 and 0 <= r["accepted"] <= r["candidates"]
        assert r["acceptance_rate"] == round(r["accepted"] / r["candidates"], 4)
        rejected = r["candidates"] - r["accepted"]
        assert sum(r["rejections"].values()) >= rejected  # every rejection has a reason
        for reason, share in r["guardrail_acceptance"].items():
            assert share == round(1 - r["rejections"].get(reason, 0) / r["candidates"], 4)
        if r["accepted"]:
            # accepted text passed the script guardrail of its locale
            assert r["cjk_share"] >= 0.6 if r["locale"] == "zh" else r["cjk_share"] <= 0.1
    assert "compare_en" not in out  # only with --compare-en


def test_choose_en_default_weighs_quality_against_speed() -> None:
    from generate import choose_en_default  # bench/generate.py

    small = {"base_model": "small", "acceptance_rate": 0.3, "s_per_accepted": 2.0,
             "mean_reward": 0.0100, "dpo_step_s": 1.0}
    big = {"base_model": "big", "acceptance_rate": 0.5, "s_per_accepted": 6.0,
           "mean_reward": 0.0110, "dpo_step_s": 4.0}
    assert choose_en_default([small, big])["model"] == "big"  # 10% better, accepts more
    assert choose_en_default([small, {**big, "mean_reward": 0.0101}])["model"] == "small"
    assert choose_en_default([small, {**big, "acceptance_rate": 0.2}])["model"] == "small"
    assert "acceptance 50% vs 30%" in choose_en_default([small, big])["reason"]
    assert choose_en_default([small])["model"] == "small"
