"""The partition controller: partition leaders elected from the in-sync replicas,
statuses reduced from what the SPUs report (``reducer.reduce_partition``)."""
