"""Metrics that judge generated faces; kept apart from training so they never share its networks."""
