"""A planning job's results: logs.json / summary.json and videos, plots, shard merges and horizon tables, the demo
job's closing table and the wandb dashboard. Imports nothing of planners/ or execution/."""
