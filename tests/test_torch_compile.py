"""utils.torch_compile: what a compile setting asks for on each device."""

from __future__ import annotations

import pytest

from utils.torch_compile import compile_mode, training_compile_mode


@pytest.mark.parametrize("setting,device,expected", [
    ("auto", "cuda", "reduce-overhead"), ("auto", "cpu", None), ("false", "cuda", None), (False, "cuda", None),
    (None, "cuda", None), ("true", "cpu", "default"), (True, "cuda", "reduce-overhead"),
    ("default", "cpu", "default"), ("max-autotune-no-cudagraphs", "cuda", "max-autotune-no-cudagraphs"),
    ("reduce-overhead", "cpu", "default"),  # CUDA graphs need CUDA
])
def test_settings(setting, device, expected):
    assert compile_mode(setting, device, "reduce-overhead") == expected


def test_a_bad_setting_is_one_line():
    with pytest.raises(ValueError, match="compile setting must be auto, true, false or one of") as exc:
        compile_mode("fastest", "cuda", "default")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("setting,device,accum,procs,expected", [
    ("auto", "cuda", 1, 1, "reduce-overhead"),  # one process, gradients used at once: CUDA graphs
    ("auto", "cpu", 1, 1, None),
    ("auto", "cuda", 4, 1, "default"), ("auto", "cuda", 1, 2, "default"),  # auto picks the graph-free mode
    ("true", "cpu", 1, 1, "default"), ("default", "cuda", 1, 1, "default"),
])
def test_training_auto_mode(setting, device, accum, procs, expected):
    assert training_compile_mode(setting, device, accum, procs) == (expected, None)


@pytest.mark.parametrize("asked,accum,procs,expected", [
    ("reduce-overhead", 2, 1, "default"), ("max-autotune", 1, 4, "max-autotune-no-cudagraphs"),
])
def test_a_graph_mode_that_cannot_be_used_is_replaced_with_a_note(asked, accum, procs, expected):
    mode, note = training_compile_mode(asked, "cuda", accum, procs)
    assert mode == expected and asked in note and expected in note and "\n" not in note
