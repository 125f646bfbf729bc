"""Planning with a trained world model, in three rooms that import one way (``tests/test_layers.py``):

* ``planners/``: what a planner receives and returns, how one is built from its config, the planners;
* ``execution/``: a planning job run in the simulator (episodes, MPC, evaluator, batches, resume);
* ``reporting/``: its results (logs.json, summary.json, videos, plots, merges, wandb).

``objectives.py`` (what a plan is scored by) is shared by the planners and the MPC.
"""
