"""What the dispatcher tells the people who run it: error reports (Sentry), metrics
(Prometheus) and log lines, all scrubbed of secrets, phone numbers and message bodies."""
