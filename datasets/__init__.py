"""Data side of dino-wm-robomimic: the robomimic hdf5 checks, the download, the converted dataset format
and its loader. No simulator or model code: ``envs`` (the simulator, demo generation) sits beside this
package and neither imports the other; ``conversion`` joins them for the converter.

Note: this top-level package is named ``datasets`` (the layout of the project is fixed). It shadows
Hugging Face ``datasets`` when the repository root is on ``sys.path``; transformers and accelerate
only probe for that package and keep working (see ``tests/test_datasets_shadowing.py``).
"""
