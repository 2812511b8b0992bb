"""Toast adapter tests and recorded stock and menus webhooks."""
