"""Planners: what each receives and returns (``protocol.py``), how one is built from its config (``factory.py``),
the latent rollouts and per-episode draws they share (``rollout.py``, ``sampling.py``), and the planners themselves."""
