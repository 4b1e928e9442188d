"""Bridges to engines outside distilora (optional extras)."""
