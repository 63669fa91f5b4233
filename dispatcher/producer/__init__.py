"""The producer side: ``Dispatcher`` validates, records and queues jobs, and reads what
became of them."""
