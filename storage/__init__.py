"""State and rules: SQLModel models, services, Redis helpers and migrations. Imports nothing else of ours."""
