"""The gateway's signed webhooks: Meta's envelope checked (``envelope``) and applied to
the ledger (``receiver``)."""
