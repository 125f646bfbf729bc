"""The run directory: ``run_info.json``, checkpoints, the frozen config and what a resume may change, the launcher's
settings, the one launch entry point (``launch.py``), restoring a checkpoint and loading a run (``run_loading.py``)."""
