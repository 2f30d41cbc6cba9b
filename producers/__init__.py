"""Producers: replay of event files, and generators of sample data and scenarios."""
