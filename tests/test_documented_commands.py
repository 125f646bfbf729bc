"""Every command shown in README.md and in the comments of conf/ runs (as far as this machine allows).

See tests/_command_check.py for what "runs" means per command kind; a command no rule knows fails.
"""

from __future__ import annotations

import pytest
from _command_check import Command, check_command, extract_config_comments, extract_readme, parse

README = extract_readme()
CONFIG = extract_config_comments()


def test_the_extraction_finds_the_commands():
    texts = [c.text for c in README + CONFIG]
    assert len(README) >= 30 and len(CONFIG) >= 6
    assert any("hydra/launcher=slurm training.seed=0,1,2" in t for t in texts)  # README and slurm.yaml
    assert any(t.startswith("accelerate launch --config_file conf/accelerate/multi_node.yaml --machine_rank 0")
               for t in texts)  # continuation lines joined
    c = parse("CKPT=outputs/x GOAL_H=5 ./plan.sh planner=random  # a comment", "x")
    assert (c.env, c.tokens) == ({"CKPT": "outputs/x", "GOAL_H": "5"}, ["./plan.sh", "planner=random"])
    c = parse("export A=1 B=$(./select_best_gpus.py single --quiet)", "x")
    assert c.env == {"A": "1", "B": "SUBST"} and c.inner == ["./select_best_gpus.py single --quiet"]
    c = parse("python plan.py ckpt_base_path=<run dir> goal_H=3,5 [hydra/launcher=local] [overrides]", "x")
    assert c.tokens == ["python", "plan.py", "ckpt_base_path=PLACEHOLDER", "goal_H=3,5", "hydra/launcher=local"]


def test_a_wrong_override_in_a_documented_command_is_caught(tmp_path, monkeypatch):
    """The slurm.yaml example as it was (``seed=0,1,2``: not a key) fails the check."""
    from hydra.errors import ConfigCompositionException

    bad = parse("python train_robomimic_compress.py -m hydra/launcher=slurm seed=0,1,2 alignment_dim=7,10", "x")
    with pytest.raises(ConfigCompositionException, match="seed"):
        check_command(bad, tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match="no rule"):
        check_command(parse("./unknown_tool.sh --x", "x"), tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match="--no-such-flag unknown"):
        check_command(parse("python -m planning.reporting.merge --no-such-flag", "x"), tmp_path, monkeypatch)


@pytest.mark.parametrize("cmd", README + CONFIG, ids=lambda c: f"{c.where} {c.text.split(' #')[0].strip()[:70]}")
def test_documented_command(cmd: Command, tmp_path, monkeypatch):
    check_command(cmd, tmp_path, monkeypatch)
