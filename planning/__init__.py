"""planning package of dino-wm-robomimic."""
