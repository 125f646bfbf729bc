"""models package of dino-wm-robomimic."""
