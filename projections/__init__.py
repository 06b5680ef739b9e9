"""Event processors that maintain read-model tables: base class, tracking, runner, rebuild."""
