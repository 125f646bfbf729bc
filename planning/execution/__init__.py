"""Running a planning job: episodes and their shards, the MPC loop in a batch of simulators, the evaluator that
measures each outcome, the batch size that fits in memory, and the job's finished batches on disk (resume)."""
