"""RQ jobs, timed-rule deadlines and sweeps, email delivery, the embedded runner.

- ``rules``: firing a deadline (an ordinary command; the order decides), the sweep, and the
  retry bookkeeping (``rule_attempts``). The deadlines are the ``deadlines`` projection.
- ``jobs``: the RQ job functions and the dispatcher that enqueues them (scaled mode).
- ``worker``: ``shopledger worker`` (RQ SimpleWorker with its scheduler, plus the sweep ticker).
- ``embedded``: the same sweep and firing from a thread of ``shopledger serve`` (no Redis).
- ``mail``: the outbox deliverer (file or SMTP), run by RQ jobs or by a thread.
"""
