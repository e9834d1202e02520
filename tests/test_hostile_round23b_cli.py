"""Hostile input, round 23b: the command lines (``memplan`` and the runtime's tools, CPU only: every tool
checks its options before it looks for a GPU)."""

from __future__ import annotations

import pytest
from cli_contract import assert_tool_refused, run_tool


@pytest.mark.parametrize("tool,argv,words", [
    # a repeated name or number ran its case twice (and reported it twice); `memplan bench` refuses it
    ("runtime.bench", ["--configs", "tiny,tiny"], ["--configs", "repeated value 'tiny'"]),
    ("runtime.bench", ["--batches", "16,016"], ["--batches", "repeated value '016' (the same as '16')"]),
    ("runtime.bench", ["--fuse", "runtime,runtime"], ["--fuse", "repeated value 'runtime'"]),
    ("runtime.bench_multi_gpu", ["--configs", "8b,8b"], ["--configs", "repeated value '8b'"]),
    ("runtime.bench_multi_gpu", ["--batches", "1,1"], ["--batches", "repeated value '1'"]),
    ("runtime.tools.bound", ["--configs", "1b,1b"], ["--configs", "repeated value '1b'"]),
    ("runtime.tools.gemm_bench", ["--rows", "4,4"], ["--rows", "repeated value '4'"]),
    ("runtime.tools.gemm_bench", ["--configs", "8b,8b"], ["--configs", "repeated value '8b'"]),
    ("runtime.tools.pdl_check", ["--batches", "2,2"], ["--batches", "repeated value '2'"]),
    ("runtime.tools.attn_bench", ["--dims", "64,64"], ["--dims", "repeated value '64'"]),
    ("runtime.tools.attn_bench", ["--batches", "0,00"], ["--batches", "repeated value '00'"]),
    ("runtime.tools.attn_tune", ["--variants", "vl5_push,vl5_push"], ["--variants", "repeated value 'vl5_push'"]),
    ("runtime.tools.compare_launches", ["--batches", "1,1"], ["--batches", "repeated value '1'"]),
    ("runtime.tools.compare_launches", ["--fuse", "norms,norms"], ["--fuse", "repeated value 'norms'"]),
    ("runtime.tools.profile", ["--configs", "8b,8b"], ["--configs", "repeated value '8b'"]),
    ("runtime.tools.rule_ab", ["--configs", "8b,8b"], ["--configs", "repeated value '8b'"]),
    ("runtime.tools.rule_ab", ["--batches", "32,32"], ["--batches", "repeated value '32'"]),
    # the last value of a constant set twice in one variant won, silently
    ("runtime.tools.rule_ab", ["--variant", "v:WG_MIN_ROWS=2,WG_MIN_ROWS=3"], ["--variant v", "set twice"]),
    # names were stripped and an empty name refused as unknown; now as `memplan bench` says it
    ("runtime.bench", ["--configs", "1b, 8b"], ["--configs", "' 8b' has spaces around it"]),
    ("runtime.bench", ["--configs", "1b,,8b"], ["--configs", "an empty value"]),
    ("runtime.bench", ["--batches", "1,,4"], ["--batches", "an empty value"]),
])
def test_runtime_tool_lists_are_sets(capsys, tool, argv, words):
    assert_tool_refused(*run_tool(capsys, tool, argv), *words)


def test_runtime_tool_lists_keep_their_order_and_values():
    from runtime.tool_args import config_list, int_list

    assert int_list("16,1,4", "--batches") == [16, 1, 4]
    assert config_list("8b,1b") == ["8b", "1b"]
    assert config_list("tiny") == ["tiny"]
