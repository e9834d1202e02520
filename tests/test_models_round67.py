"""Round 67 (models67): the CPU sweep over the 339 models round 66's budget did not reach, and what it found.

- The sweep's JSON cut every verdict at 150 characters: a refusal's advice comes at its end and was lost
  (round 66's refusals of Qwen3-ASR and NLLB-MoE kept their first line and lost the way out); the JSON now keeps
  the whole message, the printed table alone is shortened.
"""

from __future__ import annotations

import json

from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402


def test_the_sweeps_json_keeps_a_refusals_whole_message(tmp_path, monkeypatch, capsys):
    """A 400-character refusal whose advice is at its end: whole in the JSON, shortened in the printed table."""
    need("transformers")
    from runtime.aten import sweep

    advice = "compile only the part of the model after that line"
    text = "torch.export failed for LlamaForCausalLM: " + "a reason " * 40 + advice

    def refuse(model, args):
        raise GraphError(text)

    monkeypatch.setattr(sweep, "load_program", refuse)
    out = tmp_path / "sweep.json"
    assert sweep.main(["--device", "cpu", "--only", "llama", "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["verdict"] == f"EXPORT(GraphError: {text})"
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if ln.startswith("llama "))
    assert "EXPORT(GraphError: torch.export failed" in line and advice not in line and len(line) < 250
