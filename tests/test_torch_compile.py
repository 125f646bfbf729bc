"""utils.torch_compile: what a compile setting asks for on each device."""

from __future__ import annotations

import pytest

from utils.torch_compile import compile_mode


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
