"""Data side of dino-wm-robomimic: demo generation, the converted dataset format and its loader.

Note: this top-level package is named ``datasets`` (the layout of the project is fixed). It shadows
Hugging Face ``datasets`` when the repository root is on ``sys.path``; transformers and accelerate
only probe for that package and keep working (see ``tests/test_datasets_shadowing.py``).
"""
