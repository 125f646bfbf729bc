"""benchmarks/plan_branch_error.py on the tiny trained run: a plan branch that replays the demonstration's own actions
ends at its goal, the offsets are state differences, the table, the JSON and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.plan_branch_error import main, measure, new_branches_from
from conversion.exploration import add_plan_branches
from datasets import executed_actions
from datasets.robomimic_dset import RobomimicEpisodes
from tasks.state_layout import position_slices


def test_positions_are_the_object_first_and_the_eef_first_of_the_trailing_proprio():
    assert position_slices(19) == {"object": slice(0, 3), "eef": slice(10, 13)}  # Lift: object 10, proprio 9
    assert position_slices(23)["eef"] == slice(14, 17)  # PickPlaceCan: object 14


@pytest.fixture(scope="module")
def replayed(tiny_lift_dataset, tmp_path_factory):
    """A dataset derived from the run's own with one plan branch: the last demonstration's own actions from frame 2,
    replayed in the simulator (as plan.py outputs.actions=true and conversion.exploration --from-plans make it)."""
    tmp = tmp_path_factory.mktemp("plan_branch_error")
    data = RobomimicEpisodes(tiny_lift_dataset)
    ep, start = len(data) - 1, 2
    executed_actions.save(tmp / "plan" / "actions" / f"eval_000_ep{ep}.npz", executed_actions.ExecutedActions(
        data.actions[ep, start:data.seq_len(ep)].numpy(), ep, start, tiny_lift_dataset.name, len(data), True))
    add_plan_branches(tiny_lift_dataset, [tmp / "plan"], tmp / "planned", progress=False)
    return tmp / "planned", ep


@pytest.mark.slow
def test_a_replayed_demonstration_ends_at_its_goal_and_the_model_says_where_it_believed(tiny_trained_run, replayed,
                                                                                       tiny_lift_dataset):
    planned, ep = replayed
    n = len(RobomimicEpisodes(tiny_lift_dataset))
    assert new_branches_from(tiny_lift_dataset, planned) == n  # the derived dataset's new episodes
    assert new_branches_from(tiny_lift_dataset, tiny_lift_dataset) == 0
    res = measure(tiny_trained_run, planned, lift_cm=-100.0)  # every branch counts as lifted here
    assert (res["from_index"], res["n_plan_branches"], res["n_lifted"], res["episodes"]) == (n, 1, 1, [n])
    # the simulator is deterministic: the branch's last frame is the demonstration's, i.e. the goal
    assert np.abs(res["object_true"]["mean_cm"]).max() < 0.5 and np.abs(res["eef_true"]["mean_cm"]).max() < 0.5
    assert res["object_within_2cm"] == 1.0
    for key in ("object_predicted", "eef_predicted", "object_readout_true", "eef_readout_true"):  # the readout
        assert len(res[key]["mean_cm"]) == 3 and np.all(np.isfinite(res[key]["mean_cm"]))
    assert measure(tiny_trained_run, planned, lift_cm=100.0)["n_lifted"] == 0  # nothing rose a metre


@pytest.mark.slow
def test_cli_prints_the_table_writes_json_and_refuses_a_dataset_without_plan_branches(tiny_trained_run, replayed,
                                                                                      tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([str(tiny_trained_run), "--data", str(replayed[0]), "--lift-cm", "-100", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "true end - goal" in text and "object within 2 cm" in text
    assert json.loads(out.read_text())["n_lifted"] == 1
    out.unlink()
    assert main([str(tiny_trained_run), "--json", str(out)]) == 2  # the run's own dataset holds no plan branch
    err = capsys.readouterr().err
    assert "holds no plan branch" in err and err.count("\n") == 1 and not out.exists()
    assert main([str(tiny_trained_run), "--data", str(tmp_path), "--json", str(out)]) == 2  # not a dataset
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load the dataset {tmp_path}") and err.count("\n") == 1 and not out.exists()
