"""Reelforge captions service."""
