"""The tamper-evident event log: hash chain, verification, signed checkpoints, exports."""
