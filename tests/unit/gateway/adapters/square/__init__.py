"""Square adapter tests and recorded Square webhook notifications."""
