"""Small helpers shared by datasets, training and planning (no project imports)."""
