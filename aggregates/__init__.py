"""The domain: aggregates, value objects and domain errors. No I/O, nothing of ours imported."""
