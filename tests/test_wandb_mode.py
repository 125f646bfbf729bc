"""Which wandb mode a run uses: the config's, else WANDB_MODE, else online with an API key and offline without."""

import pytest

from utils.wandb_mode import MODES, check_mode, resolve_mode


def test_the_config_mode_wins_and_a_misspelt_one_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    for mode in MODES:
        assert resolve_mode(mode) == mode
    check_mode(None)
    with pytest.raises(ValueError, match=r"^wandb.mode='ofline' is not one of null .*online, offline, disabled$"):
        resolve_mode("ofline")


def test_without_a_config_mode_the_environment_then_the_api_key_decide(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(None) == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_mode(None) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode(None) == "online"
