"""Round 70, lead: what the GPU machine's torch (2.11) showed that CI's cannot."""

from __future__ import annotations

from memplan.importers.torch.common import _data_dependent_advice

FIRST = "Could not guard on data-dependent expression Eq(4*Min(1000, u0), 0) (unhinted: Eq(4*Min(1000, u0), 0))."


def _raised(text: str) -> BaseException:
    """An export failure raised from a frame of nobody's model (this test's), as torch 2.11 raises it."""
    try:
        raise RuntimeError(text)
    except RuntimeError as exc:
        return exc


def test_a_detection_models_nms_named_only_in_torchs_text_gets_the_compile_detector_advice():
    """Failed before (torch 2.11 on the GPU machine): torch raised the guard failure from its own frames, naming
    torchvision's ``boxes.py`` only in its "Caused by:" note, so the whole-model refusal gave the generic advice
    ("compile only the part of the model after that line"), which points the wrong way."""
    exc = _raised(FIRST + "\n\nCaused by: (torchvision/ops/boxes.py:97 in _batched_nms_coordinate_trick)\n")
    said = _data_dependent_advice(FIRST, exc)
    assert "runtime.aten.detection.compile_detector(model, images)" in said
    assert "after that line" not in said


def test_another_models_data_dependent_line_keeps_the_generic_advice():
    exc = _raised(FIRST + "\n\nCaused by: (transformers/models/led/modeling_led.py:192 in forward)\n")
    said = _data_dependent_advice(FIRST, exc)
    assert "compile_detector" not in said and "after that line" in said
