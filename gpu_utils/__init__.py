"""gpu_utils package of dino-wm-robomimic."""
