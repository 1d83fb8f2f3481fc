"""The admin console (/admin): routes, login and roles as FastAPI dependencies, Jinja templates, static files."""
