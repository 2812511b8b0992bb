"""Zettle adapter tests and recorded Pusher API webhooks."""
