"""Launchers and process plugins for real OGC API - Processes test servers."""
