"""Contracts shared by every service: event models, topic map, ids, settings, metrics."""
