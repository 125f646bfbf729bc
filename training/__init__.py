"""Training of the world model, in two rooms that import one way (``tests/test_layers.py``):

* ``run_dir/``: what a run directory holds and how a launch meets it: ``run_info.json``, checkpoints, the frozen
  config and its reconciliation on a resume, the launcher's settings, restoring a checkpoint and loading a run
  (``launch.open_launch`` is the one entry point of ``train_robomimic_compress.py``); imports nothing of ``loop/``;
* ``loop/``: the Accelerate training loop: data and batches, the processes of a run, validation, wandb.

Beside them: ``model_config.py`` (config -> model spec), ``settings_check.py`` (a launch's values checked before
anything is written), ``cache_features.py`` (the feature cache ahead of training) and the heads fitted after
training on the frozen model (``action_prior.py``, ``cost_to_go.py``).
"""
