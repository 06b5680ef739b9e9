"""The read side: query functions over read-model tables, returning plain data."""
