"""Which wandb mode a run uses: the config's, else WANDB_MODE, else online with an API key and offline without."""

import pytest

from utils.wandb_mode import MODES, base_url, check_mode, resolve_mode


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


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    """No key anywhere: an empty HOME, no WANDB_* variables, no NETRC."""
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_CONFIG_DIR", "NETRC"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def netrc_for(home, machine):
    path = home / ".netrc"
    path.write_text(f"machine {machine}\n  login user\n  password {'k' * 40}\n")
    path.chmod(0o600)
    return path


def test_the_netrc_key_counts_for_the_server_runs_talk_to(no_key, monkeypatch):
    netrc_for(no_key, "api.wandb.ai")
    assert base_url() == "https://api.wandb.ai" and resolve_mode(None) == "online"
    # a self-hosted server with no key of its own: offline, not online with the public server's key
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org:8443")
    assert resolve_mode(None) == "offline"
    netrc_for(no_key, "wandb.example.org:8443")  # what `wandb login --host https://wandb.example.org:8443` writes
    assert resolve_mode(None) == "online"


def test_the_settings_file_base_url_and_the_netrc_variable(no_key, monkeypatch):
    config = no_key / "cfg"
    config.mkdir()
    (config / "settings").write_text("[default]\nbase_url = http://localhost:8080\n")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(config))
    assert base_url() == "http://localhost:8080"
    elsewhere = netrc_for(no_key, "localhost:8080").rename(no_key / "my-netrc")
    assert resolve_mode(None) == "offline"  # ~/.netrc is gone
    monkeypatch.setenv("NETRC", str(elsewhere))
    assert resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")  # the variable wins over the file
    assert base_url() == "https://api.wandb.ai" and resolve_mode(None) == "offline"
