"""RQ jobs, timed-rule deadlines and sweeps, email delivery, the embedded runner.

The platform issue only needs the in-process projection runner (``shopledger serve`` in
embedded mode, see ``shopledger.bootstrap.Container.start_background``); timed rules and
email delivery arrive with the workers issue.
"""
