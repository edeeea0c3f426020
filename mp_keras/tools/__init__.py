"""Command-line tools that illustrate the course notes."""
