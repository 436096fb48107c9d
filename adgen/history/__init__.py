"""Past A/B tests as outside evidence: CSV import, stored apart from live traffic, and pairs."""
