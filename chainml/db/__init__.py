"""Storage: engine and URL handling, ORM tables, and the repository functions."""
