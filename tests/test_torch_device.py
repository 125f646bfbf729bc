"""Devices typed by users: refused in one line before any work when this machine does not have them."""

import argparse

import pytest
import torch

from utils.torch_device import device_argument, usable_device


def test_cpu_is_usable_and_a_non_device_name_is_refused():
    assert usable_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"'gpu' is not a device name \(cpu \| cuda \| cuda:N\)"):
        usable_device("gpu")
    with pytest.raises(ValueError, match="only cpu and cuda"):
        usable_device("meta")


def test_a_cuda_device_this_process_cannot_see_is_refused_with_what_there_is():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match="no usable CUDA GPU" if count == 0 else f"sees {count} CUDA GPU"):
        usable_device(f"cuda:{count}")
    if count:
        assert usable_device("cuda:0") == torch.device("cuda:0")


def test_device_argument_resolves_auto_and_is_an_argparse_error_otherwise(capsys):
    assert device_argument("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    p = argparse.ArgumentParser(prog="tool")
    p.add_argument("--device", type=device_argument)
    assert p.parse_args(["--device", "cpu"]).device == "cpu"
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--device", "gpu"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "tool: error: argument --device: device 'gpu' is not a device name (cpu | cuda | cuda:N)"
