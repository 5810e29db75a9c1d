"""Catalog sources: one pure parser per format."""
