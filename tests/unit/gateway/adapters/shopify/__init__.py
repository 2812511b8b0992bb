"""Shopify adapter tests and recorded Shopify webhook deliveries."""
