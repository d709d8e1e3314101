"""Jinja2 templates of the daily report page."""
