"""DVC plots that render anywhere: the offline HTML template (plots.offline) and static export (plots.export)."""
