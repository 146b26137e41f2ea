"""Reelforge billing service."""
