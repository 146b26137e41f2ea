"""Reelforge analysis service."""
