"""The match service over HTTP: `takeback.web.app.create_app(settings)` builds the FastAPI application."""
