"""shopledger: the composition root (settings, bootstrap, CLI)."""
