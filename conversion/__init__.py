"""The converter's simulator side: a robomimic hdf5 file checked against robosuite and its episodes
read (or re-rendered) as dataset arrays. It joins ``datasets`` (file formats) and ``envs`` (the
simulator), which import nothing from each other; ``convert_robomimic_to_dino_wm.py`` drives it.
"""
