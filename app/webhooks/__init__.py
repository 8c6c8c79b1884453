"""Webhooks (Standard Webhooks): subscriptions per unit subtree and event type, the outbox written in the
same transaction as the change, and the deliverer that sends it with retries."""
