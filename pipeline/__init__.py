"""Glue for the one-command demo job (``run_demo.sh``)."""
