"""plan_setup: loading the learned parts a plan uses, with the identity its outputs give them."""

from __future__ import annotations

import hashlib

import pytest
import torch
from omegaconf import OmegaConf

from models.cost_to_go import CTG_DIR, CostToGo, CostToGoConfig, save_cost_to_go
from plan_setup import PlanError, load_learned_cost


def _cfg(run_dir):
    return OmegaConf.create({"ckpt_base_path": str(run_dir), "objective": {"cost_to_go_weight": 0.5}})


def test_learned_cost_loads_with_the_hash_of_its_weights_and_a_refit_is_another_identity(tmp_path):
    torch.manual_seed(0)
    save_cost_to_go(CostToGo(CostToGoConfig(n_patches=2, latent_dim=4, far=9.0)), tmp_path / CTG_DIR)
    model, identity = load_learned_cost(_cfg(tmp_path), "cpu")
    weights = tmp_path / CTG_DIR / "model.safetensors"
    assert identity == {"path": str((tmp_path / CTG_DIR).resolve()),
                        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert model(torch.zeros(2, 4), torch.ones(2, 4)).shape == ()
    save_cost_to_go(CostToGo(CostToGoConfig(n_patches=2, latent_dim=4, far=9.0)), tmp_path / CTG_DIR)  # a refit
    assert load_learned_cost(_cfg(tmp_path), "cpu")[1]["sha256"] != identity["sha256"]


def test_a_run_without_a_learned_cost_is_one_line_naming_the_setting(tmp_path):
    with pytest.raises(PlanError, match="objective.cost_to_go_weight=0.5") as exc:
        load_learned_cost(_cfg(tmp_path), "cpu")
    assert "\n" not in str(exc.value)
