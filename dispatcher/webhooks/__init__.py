"""The gateway's signed webhooks: Meta's notification checked and typed
(``notification``; Meta calls its outer object an envelope, not to be confused with a
job's envelope) and applied to the ledger (``receiver``)."""
