"""envs package of dino-wm-robomimic."""
